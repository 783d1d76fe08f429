import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { accessSync, constants, existsSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../log/logger.ts';
import type { SourceSpec } from './source-spec.ts';

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  /** A run at least this long resets the back-off. */
  healthyAfterMs: number;
}

export type SourceProblem = 'missing_command' | 'missing_device' | 'busy_device' | 'permission' | 'exited';

export interface SourceExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  runMs: number;
  problem: SourceProblem;
  message: string;
  /** Last lines the process wrote to stderr. */
  stderrTail: string[];
  /** Milliseconds until the next start, or null when not restarting. */
  restartInMs: number | null;
}

interface SupervisorEvents {
  started: [{ pid: number; run: number; spec: SourceSpec }];
  data: [Buffer];
  /** Every non-empty stderr line of the current run. */
  stderr: [string];
  exit: [SourceExit];
}

/** Find an executable on PATH the way spawn will. */
export function whichSync(cmd: string, envPath = process.env.PATH ?? ''): string | null {
  if (cmd.includes('/')) return existsSync(cmd) ? cmd : null;
  for (const dir of envPath.split(':')) {
    if (!dir) continue;
    const p = path.join(dir, cmd);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return null;
}

/** Turn what a source wrote to stderr into a problem a person can act on. */
export function classifyFailure(spec: SourceSpec, stderr: string[]): { problem: SourceProblem; message: string } {
  const text = stderr.join('\n');
  const dev = spec.device ?? 'the device';
  if (/No such file or directory/i.test(text) && spec.device)
    return { problem: 'missing_device', message: `camera device ${dev} does not exist (unplugged?)` };
  // What the V4L2 driver answers once a streaming USB camera is pulled out.
  if (/No such device|ENODEV/i.test(text) && spec.device)
    return { problem: 'missing_device', message: `camera ${dev} was unplugged` };
  if (/Device or resource busy|EBUSY/i.test(text))
    return { problem: 'busy_device', message: `camera device ${dev} is busy: another program has it open` };
  if (/Permission denied|EACCES/i.test(text))
    return { problem: 'permission', message: `no permission to open ${dev}: is the service user in the video group?` };
  const last = stderr.filter((l) => l.trim()).slice(-1)[0];
  return { problem: 'exited', message: last ? `${spec.command} failed: ${last}` : `${spec.command} exited` };
}

/**
 * Runs one source process for as long as it is wanted: stdout goes to the consumer, stderr to the log (and a
 * tail kept for status), an exit is reported with a reason and followed by a restart with exponential back-off.
 * The spec is fetched anew at each start, so a changed config applies on the next restart.
 */
export class SourceSupervisor extends EventEmitter<SupervisorEvents> {
  private child: ChildProcess | null = null;
  private wanted = false;
  private timer: NodeJS.Timeout | null = null;
  private delayMs: number;
  private runs = 0;
  private stderrTail: string[] = [];
  private exited: Promise<void> = Promise.resolve();

  constructor(
    private readonly name: string,
    private readonly makeSpec: () => SourceSpec,
    private readonly backoff: BackoffOptions,
    private readonly log: Logger,
  ) {
    super();
    this.delayMs = backoff.initialMs;
  }

  get running(): boolean {
    return this.child !== null;
  }

  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  get runCount(): number {
    return this.runs;
  }

  start(): void {
    this.wanted = true;
    // Asynchronously, so a caller's listeners attached right after start() see the first outcome.
    if (!this.child && !this.timer) this.timer = setTimeout(() => this.launch(), 0);
  }

  /** Ask the process to stop (SIGINT lets ffmpeg flush), SIGKILL after the timeout. */
  async stop(timeoutMs = 3000): Promise<void> {
    this.wanted = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const child = this.child;
    if (!child) return;
    child.kill('SIGINT');
    const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(killer);
  }

  /** Kill the current process as a crash would (tests, and a stuck source). It is restarted if wanted. */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    this.child?.kill(signal);
  }

  private launch(): void {
    this.timer = null;
    let spec: SourceSpec;
    try {
      spec = this.makeSpec();
    } catch (err) {
      this.reportExit({ problem: 'exited', message: (err as Error).message }, null, null, 0, this.name);
      return;
    }
    if (!whichSync(spec.command)) {
      this.reportExit(
        { problem: 'missing_command', message: `${spec.command} is not installed (not found on PATH)` },
        null,
        null,
        0,
        spec.command,
      );
      return;
    }
    if (spec.device && !existsSync(spec.device)) {
      this.reportExit(classifyFailure(spec, ['No such file or directory']), null, null, 0, spec.command);
      return;
    }
    this.runs += 1;
    this.stderrTail = [];
    const startedAt = Date.now();
    const child = spawn(spec.command, spec.args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    let resolveExit!: () => void;
    this.exited = new Promise((r) => (resolveExit = r));
    this.log.info({ camera: this.name, pid: child.pid, run: this.runs, cmd: spec.command, args: spec.args }, 'source started');
    child.stdout!.on('data', (chunk: Buffer) => this.emit('data', chunk));
    let partial = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (s: string) => {
      const lines = (partial + s).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) this.stderrLine(line, spec);
    });
    child.on('error', (err) => this.stderrLine(`spawn error: ${err.message}`));
    // 'close' waits for stdout and stderr to close too; a grandchild that outlived the source (a wrapper's
    // encoder) can hold them open forever. Once the process itself is gone, give its output a moment to drain,
    // then close the pipes so the exit is always seen.
    child.on('exit', () => {
      const t = setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
      }, 1000);
      t.unref();
    });
    child.on('close', (code, signal) => {
      if (partial) this.stderrLine(partial, spec);
      this.child = null;
      const runMs = Date.now() - startedAt;
      if (runMs >= this.backoff.healthyAfterMs) this.delayMs = this.backoff.initialMs;
      const verdict = classifyFailure(spec, this.stderrTail);
      this.reportExit(verdict, code, signal, runMs, spec.command);
      resolveExit();
    });
    if (child.pid !== undefined) this.emit('started', { pid: child.pid, run: this.runs, spec });
  }

  private stderrLine(line: string, spec?: SourceSpec): void {
    if (!line.trim()) return;
    this.emit('stderr', line);
    if (spec?.relativePts?.isChatter(line)) return;
    this.stderrTail.push(line);
    if (this.stderrTail.length > 20) this.stderrTail.shift();
    this.log.warn({ camera: this.name, stderr: line }, 'source stderr');
  }

  private reportExit(
    verdict: { problem: SourceProblem; message: string },
    code: number | null,
    signal: NodeJS.Signals | null,
    runMs: number,
    command: string,
  ): void {
    const restartInMs = this.wanted ? this.delayMs : null;
    const exit: SourceExit = { code, signal, runMs, ...verdict, stderrTail: [...this.stderrTail], restartInMs };
    if (this.wanted) this.log.error({ camera: this.name, cmd: command, ...exit }, 'source stopped; restarting');
    else this.log.info({ camera: this.name, code, signal }, 'source stopped');
    this.emit('exit', exit);
    if (this.wanted) {
      this.timer = setTimeout(() => this.launch(), this.delayMs);
      this.delayMs = Math.min(this.delayMs * 2, this.backoff.maxMs);
    }
  }
}
