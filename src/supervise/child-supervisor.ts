import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { accessSync, constants, existsSync } from 'node:fs';
import path from 'node:path';
import type { Writable } from 'node:stream';
import type { Logger } from '../log/logger.ts';
import { Backoff, type BackoffOptions } from './backoff.ts';
import { StderrLog, type StderrLogLimit } from './stderr-log.ts';

/** What to run for one run of a supervised child; fetched anew before every start. */
export interface ChildSpec {
  /** Executable, looked up on the PATH of `env` (or of this process). */
  command: string;
  args: readonly string[];
  env?: NodeJS.ProcessEnv;
  /** Device node the child opens: checked before starting, for a clear "missing device" without a run. */
  device?: string;
  /** Overrides the supervisor's stallMs / firstOutputMs for this run (e.g. from the camera's frame rate). */
  stallMs?: number | null;
  firstOutputMs?: number | null;
  /** Expected per-frame chatter on stderr: neither logged nor kept in the tail (still emitted as `stderr`). */
  isChatter?: (line: string) => boolean;
}

/**
 * Why a run ended. Device problems are read from the child's own stderr; `stalled` means the supervisor killed
 * it for writing nothing on stdout for `stallMs` while alive; `setup_failed` means the spec could not be made.
 */
export type ChildProblem =
  | 'missing_command'
  | 'missing_device'
  | 'busy_device'
  | 'permission'
  | 'stalled'
  /** The owner refused what the child delivered (e.g. capture timestamps on the wrong clock): `refuse()`. */
  | 'refused'
  | 'signal'
  | 'exited'
  | 'setup_failed';

export interface ChildExit {
  /** Run number (1-based) the exit ends; 0 when no process was started. */
  run: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  runMs: number;
  problem: ChildProblem;
  message: string;
  /** Last stderr lines of the run (chatter excluded). */
  stderrTail: string[];
  /** Milliseconds until the next start, or null when not restarting (stopped, or restart off). */
  restartInMs: number | null;
  /** What `makeSpec` threw, for a setup failure (an owner may name it better). */
  error?: unknown;
}

export interface ChildStarted<S extends ChildSpec> {
  pid: number;
  run: number;
  spec: S;
}

interface ChildEvents<S extends ChildSpec> {
  started: [ChildStarted<S>];
  /** stdout, chunk by chunk. */
  data: [Buffer];
  /** Every non-empty stderr line of the current run (chatter included). */
  stderr: [string];
  exit: [ChildExit];
}

export interface ChildSupervisorOptions<S extends ChildSpec> {
  /** What it is, for logs: `source`, `gpiomon`, `preview decoder` (messages are `<what> started` ...). */
  what: string;
  /** Fields on every log line (e.g. `{ camera: 'cam0' }`). */
  logFields?: Record<string, unknown>;
  makeSpec: () => S | Promise<S>;
  log: Logger;
  backoff?: Partial<BackoffOptions>;
  /** Restart after an exit while wanted (default true). */
  restart?: boolean;
  /** 'pipe' to feed the child (a decoder); default 'ignore'. */
  stdin?: 'pipe' | 'ignore';
  /** No stdout for this long while alive (after its first output) is a stall: killed and restarted. null: off. */
  stallMs?: number | null;
  /** The same before the first output of a run (start-up can be slower); defaults to stallMs. */
  firstOutputMs?: number | null;
  /** Signal that asks the child to finish (SIGINT lets ffmpeg flush); SIGKILL after stopGraceMs. */
  stopSignal?: NodeJS.Signals;
  stopGraceMs?: number;
  /** stderr lines kept for error messages. */
  tailLines?: number;
  stderrLimit?: Partial<StderrLogLimit>;
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

/** Turn how a child ended, and what it wrote to stderr, into a problem a person can act on. */
export function classifyExit(
  spec: Pick<ChildSpec, 'command' | 'device'>,
  stderr: readonly string[],
  code: number | null,
  signal: NodeJS.Signals | null,
): { problem: ChildProblem; message: string } {
  const text = stderr.join('\n');
  const dev = spec.device ?? 'the device';
  if (/No such file or directory/i.test(text) && spec.device)
    return { problem: 'missing_device', message: `camera device ${dev} does not exist (unplugged?)` };
  // What the V4L2 driver answers once a streaming USB camera is pulled out.
  if (/No such device|ENODEV/i.test(text) && spec.device) return { problem: 'missing_device', message: `camera ${dev} was unplugged` };
  if (/Device or resource busy|EBUSY/i.test(text))
    return { problem: 'busy_device', message: `${spec.device ? `camera device ${dev}` : spec.command} is busy: another program has it open` };
  if (/Permission denied|EACCES/i.test(text))
    return { problem: 'permission', message: `no permission to open ${dev}: is the service user in the video group?` };
  const last = stderr.filter((l) => l.trim()).slice(-1)[0];
  if (signal) return { problem: 'signal', message: `${spec.command} killed by ${signal}${last ? `: ${last}` : ''}` };
  return { problem: 'exited', message: last ? `${spec.command} failed: ${last}` : `${spec.command} exited${code !== null ? ` with status ${code}` : ''}` };
}

/**
 * The one supervisor of child processes (camera sources, gpiomon, gpioset, the preview decoder): runs a child
 * for as long as it is wanted, hands its stdout to the owner, logs its stderr (rate-limited) and keeps a tail for
 * error messages, classifies each exit, kills a child that stalls (alive, no output), restarts it with the one
 * jittered back-off, and stops it cleanly (stop signal, SIGKILL after a grace) even when a grandchild holds its
 * pipes. Nothing else in rigcam spawns long-running processes.
 */
export class ChildSupervisor<S extends ChildSpec = ChildSpec> extends EventEmitter<ChildEvents<S>> {
  private child: ChildProcess | null = null;
  private wanted = false;
  private timer: NodeJS.Timeout | null = null;
  private stallTimer: NodeJS.Timeout | null = null;
  private lastOutputAt = 0;
  private sawOutput = false;
  private stalled = false;
  private refusal: string | null = null;
  /** Stall limits of the current run: [before the first output, after it]. */
  private limits: [number | null, number | null] = [null, null];
  private runs = 0;
  private tail: string[] = [];
  private exited: Promise<void> = Promise.resolve();
  /** Bumped by stop(): a spec still being made for an older start is dropped. */
  private generation = 0;
  private readonly backoff: Backoff;
  private readonly stderrLog: StderrLog;
  private readonly o: Required<Omit<ChildSupervisorOptions<S>, 'backoff' | 'stderrLimit' | 'logFields'>> & { logFields: Record<string, unknown> };

  constructor(opts: ChildSupervisorOptions<S>) {
    super();
    this.o = {
      restart: true,
      stdin: 'ignore',
      stallMs: null,
      stopSignal: 'SIGTERM',
      stopGraceMs: 3000,
      tailLines: 20,
      ...opts,
      firstOutputMs: opts.firstOutputMs === undefined ? (opts.stallMs ?? null) : opts.firstOutputMs,
      logFields: opts.logFields ?? {},
    };
    this.backoff = new Backoff(opts.backoff);
    this.stderrLog = new StderrLog(opts.log, `${opts.what} stderr`, this.o.logFields, opts.stderrLimit);
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

  /** The running child's stdin (with `stdin: 'pipe'`), else null. */
  get stdin(): Writable | null {
    return this.child?.stdin ?? null;
  }

  start(): void {
    this.wanted = true;
    // Asynchronously, so listeners attached right after start() see the first outcome.
    if (!this.child && !this.timer) this.timer = setTimeout(() => void this.launch(), 0);
  }

  /** Ask the child to finish (stop signal, stdin closed), SIGKILL after the grace; no restart. */
  async stop(graceMs = this.o.stopGraceMs): Promise<void> {
    this.wanted = false;
    this.generation++;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const child = this.child;
    if (!child) return;
    child.stdin?.end();
    if (child.exitCode === null && child.signalCode === null) child.kill(this.o.stopSignal);
    const killer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(killer);
  }

  /** Kill the current run because what it delivers is unusable; its exit reports `refused` with this message. */
  refuse(message: string): void {
    if (!this.child) return;
    this.refusal = message;
    this.child.kill('SIGKILL');
  }

  /** Kill the current child as a crash would (tests; a source that must be given up). Restarted if wanted. */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    this.child?.kill(signal);
  }

  private async launch(): Promise<void> {
    this.timer = null;
    const generation = this.generation;
    let spec: S;
    try {
      spec = await this.o.makeSpec();
    } catch (err) {
      if (generation !== this.generation) return;
      this.report({ run: 0, code: null, signal: null, runMs: 0, problem: 'setup_failed', message: (err as Error)?.message ?? String(err), error: err }, this.o.what);
      return;
    }
    if (generation !== this.generation || !this.wanted) return;
    if (!whichSync(spec.command, spec.env?.PATH ?? process.env.PATH ?? '')) {
      this.report({ run: 0, code: null, signal: null, runMs: 0, problem: 'missing_command', message: `${spec.command} is not installed (not found on PATH)` }, spec.command);
      return;
    }
    if (spec.device && !existsSync(spec.device)) {
      this.report({ run: 0, code: null, signal: null, runMs: 0, ...classifyExit(spec, ['No such file or directory'], null, null) }, spec.command);
      return;
    }
    this.runs += 1;
    const run = this.runs;
    this.tail = [];
    this.stalled = false;
    this.refusal = null;
    this.sawOutput = false;
    const stallMs = spec.stallMs === undefined ? this.o.stallMs : spec.stallMs;
    const firstMs = spec.firstOutputMs !== undefined ? spec.firstOutputMs : spec.stallMs !== undefined ? spec.stallMs : this.o.firstOutputMs;
    this.limits = [firstMs, stallMs];
    const startedAt = Date.now();
    const child = spawn(spec.command, [...spec.args], { stdio: [this.o.stdin, 'pipe', 'pipe'], env: spec.env });
    this.child = child;
    let resolveExit!: () => void;
    this.exited = new Promise((r) => (resolveExit = r));
    let spawnError: Error | null = null;
    let done = false;
    const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (done) return;
      done = true;
      if (partial) this.stderrLine(partial, spec);
      partial = '';
      this.clearStall();
      this.stderrLog.flush();
      if (this.child === child) this.child = null;
      const verdict = this.refusal !== null
        ? { problem: 'refused' as const, message: this.refusal }
        : this.stalled
        ? { problem: 'stalled' as const, message: `${spec.command} wrote nothing for ${this.limits[this.sawOutput ? 1 : 0]} ms while running: killed` }
        : spawnError
          ? { problem: 'exited' as const, message: `${spec.command} could not start: ${spawnError.message}` }
          : classifyExit(spec, this.tail, code, signal);
      this.report({ run, code, signal, runMs: Date.now() - startedAt, ...verdict }, spec.command);
      resolveExit();
    };
    this.o.log.info({ ...this.o.logFields, pid: child.pid, run, cmd: spec.command, args: spec.args }, `${this.o.what} started`);
    child.stdin?.on('error', () => undefined); // EPIPE once the child died; its exit is reported below
    child.stdout!.on('data', (chunk: Buffer) => {
      this.lastOutputAt = Date.now();
      if (!this.sawOutput) {
        this.sawOutput = true;
        // From now on the (shorter) running limit applies.
        this.clearStall();
        this.armStall(child);
      }
      this.emit('data', chunk);
    });
    let partial = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (s: string) => {
      const lines = (partial + s).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) this.stderrLine(line, spec);
    });
    child.on('error', (err) => {
      spawnError = err;
      // A child that never started has no exit to wait for.
      if (child.pid === undefined) finish(null, null);
    });
    // 'close' waits for stdout and stderr to close too; a grandchild that outlived the child (a wrapper's
    // encoder) can hold them open forever. Once the process itself is gone, give its output a moment to drain,
    // then close the pipes so the exit is always seen.
    child.on('exit', () => {
      this.clearStall();
      const t = setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
      }, 1000);
      t.unref();
    });
    child.on('close', (code, signal) => finish(code, signal));
    if (child.pid !== undefined) {
      this.armStall(child);
      this.emit('started', { pid: child.pid, run, spec });
    }
  }

  /** One timer per run, re-armed for the remainder rather than reset on every chunk. */
  private armStall(child: ChildProcess): void {
    const [firstMs, stallMs] = this.limits;
    if (firstMs === null && stallMs === null) return;
    this.lastOutputAt = Date.now();
    const check = (): void => {
      this.stallTimer = null;
      if (this.child !== child) return;
      const limit = this.sawOutput ? stallMs : firstMs;
      if (limit === null) {
        // No limit before the first output: look again later, for when output has begun.
        if (stallMs !== null) this.stallTimer = setTimeout(check, stallMs);
        return;
      }
      const quietMs = Date.now() - this.lastOutputAt;
      if (quietMs < limit) {
        this.stallTimer = setTimeout(check, limit - quietMs);
        return;
      }
      this.stalled = true;
      this.o.log.error({ ...this.o.logFields, pid: child.pid, quietMs }, `${this.o.what} stalled (no output): killing it`);
      child.kill('SIGKILL');
    };
    // Before the first output firstMs applies (with it off, look again after stallMs); after it, stallMs.
    this.stallTimer = setTimeout(check, (this.sawOutput ? (stallMs ?? firstMs) : (firstMs ?? stallMs))!);
  }

  private clearStall(): void {
    if (this.stallTimer) clearTimeout(this.stallTimer);
    this.stallTimer = null;
  }

  private stderrLine(line: string, spec: S): void {
    if (!line.trim()) return;
    this.emit('stderr', line);
    if (spec.isChatter?.(line)) return;
    this.tail.push(line);
    if (this.tail.length > this.o.tailLines) this.tail.shift();
    this.stderrLog.line(line);
  }

  private report(e: Omit<ChildExit, 'stderrTail' | 'restartInMs'>, command: string): void {
    const restart = this.wanted && this.o.restart;
    const restartInMs = restart ? this.backoff.next(e.runMs) : null;
    const exit: ChildExit = { ...e, stderrTail: [...this.tail], restartInMs };
    const { error: _error, ...logged } = exit;
    // A one-shot child (restart off, e.g. an offload copy) that finished with status 0 did its job: not an error.
    const done = !this.o.restart && e.code === 0;
    if (this.wanted && !done) this.o.log.error({ ...this.o.logFields, cmd: command, ...logged }, `${this.o.what} stopped${restart ? '; restarting' : ''}`);
    else this.o.log.info({ ...this.o.logFields, code: e.code, signal: e.signal }, `${this.o.what} stopped`);
    if (restartInMs !== null) this.timer = setTimeout(() => void this.launch(), restartInMs);
    else this.wanted = this.wanted && this.o.restart;
    this.emit('exit', exit);
  }
}
