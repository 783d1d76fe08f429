import { spawn } from 'node:child_process';

export interface RunOnceResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  /** The end of stderr (at most 2000 characters). */
  stderr: string;
  timedOut: boolean;
}

/**
 * One short-lived child (a one-shot decode): `input` on stdin, stdout collected, SIGKILL after timeoutMs.
 * Rejects only when it cannot start (missing binary). Lives beside the supervisor so that only src/supervise
 * spawns processes that are fed or read as streams.
 */
export function runOnce(command: string, args: readonly string[], opts: { input?: Buffer; timeoutMs: number; env?: NodeJS.ProcessEnv }): Promise<RunOnceResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, [...args], { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env });
    const out: Buffer[] = [];
    let err = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs);
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
    child.stdin.on('error', () => undefined); // EPIPE when it exits early: its exit says why
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out), stderr: err, timedOut });
    });
    child.stdin.end(opts.input);
  });
}
