import { spawn, type ChildProcess } from 'node:child_process';
import { lstat, rm } from 'node:fs/promises';

/**
 * A real pseudo-terminal pair made by socat, reachable at two symlinks: what one side writes the
 * other reads, like the two ends of a null-modem cable. Killing socat makes both ptys vanish, like
 * pulling a USB-serial adapter.
 */
export interface SocatPty {
  readonly linkA: string;
  readonly linkB: string;
  readonly pid: number;
  /** Everything socat wrote to stderr (its -d -d log), for failure messages. */
  stderr(): string;
  /** Kills socat, waits for it to exit and removes links it left behind. Safe to call twice. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export async function startSocatPty(linkA: string, linkB: string, timeoutMs = 5000): Promise<SocatPty> {
  await Promise.all([rm(linkA, { force: true }), rm(linkB, { force: true })]);
  const child = spawn('socat', ['-d', '-d', `pty,raw,echo=0,link=${linkA}`, `pty,raw,echo=0,link=${linkB}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (s: string) => (log += s));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // A test that dies half-way must not leave socat running.
  const killOnExit = (): void => void child.kill('SIGKILL');
  process.once('exit', killOnExit);

  const kill = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
    process.removeListener('exit', killOnExit);
    await Promise.all([rm(linkA, { force: true }), rm(linkB, { force: true })]);
  };

  try {
    await waitReady(child, () => log, [linkA, linkB], timeoutMs);
  } catch (err) {
    await kill('SIGKILL');
    throw err;
  }
  return { linkA, linkB, pid: child.pid!, stderr: () => log, kill };
}

/** Ready = socat logged its transfer loop start (both ptys exist and are linked). */
async function waitReady(child: ChildProcess, log: () => string, links: string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`socat exited early:\n${log()}`);
    if (log().includes('starting data transfer loop') && (await allExist(links))) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`socat pty pair not ready after ${timeoutMs} ms:\n${log()}`);
}

async function allExist(paths: string[]): Promise<boolean> {
  const found = await Promise.all(paths.map((p) => lstat(p).then(() => true, () => false)));
  return found.every(Boolean);
}
