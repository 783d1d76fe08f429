import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

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

/**
 * The scheduler's own accounting of each thread of a process, by thread id (µs): time on a CPU, and time runnable
 * but waiting for one (the first two fields of /proc/<pid>/task/<tid>/schedstat).
 */
export type ThreadTimes = Map<number, { onCpu: number; waiting: number }>;
export function threadTimes(pid: number): ThreadTimes {
  const out: ThreadTimes = new Map();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const [onCpu, waiting] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ').map(Number);
      out.set(Number(tid), { onCpu: onCpu! / 1000, waiting: waiting! / 1000 });
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

/** Between two readings: the main thread's time on a CPU and waiting for one, and all threads' waiting summed. */
export function threadDelta(a: ThreadTimes, b: ThreadTimes, pid: number): { mainOnCpu: number; mainWaiting: number; allWaiting: number } {
  let allWaiting = 0;
  for (const [tid, t] of b) allWaiting += t.waiting - (a.get(tid)?.waiting ?? 0);
  const a0 = a.get(pid) ?? { onCpu: 0, waiting: 0 };
  const b0 = b.get(pid) ?? a0;
  return { mainOnCpu: b0.onCpu - a0.onCpu, mainWaiting: b0.waiting - a0.waiting, allWaiting };
}
