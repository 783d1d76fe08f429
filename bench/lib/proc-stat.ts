import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat times. */
export const CLK_TCK = ((): number => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

/** Fields of /proc/<pid>/stat after the command name (which may itself hold spaces and parentheses). */
function statFields(pid: number | 'self'): string[] {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return text.slice(text.lastIndexOf(')') + 2).split(' ');
}

/** user + system CPU seconds of a process, all its threads, not its children. */
export function cpuSecondsOf(pid: number | 'self'): number {
  const f = statFields(pid);
  // After the name: state(3) ... utime(14) stime(15), i.e. offsets 11 and 12.
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}
