import { EventEmitter } from 'node:events';
import type { Logger } from '../../log/logger.ts';
import type { BackoffOptions } from '../../supervise/backoff.ts';
import { ChildSupervisor, type ChildExit, type ChildSpec } from '../../supervise/child-supervisor.ts';
import type { GpioStatus, OutputLine, OutputLineEvents } from './gpio-hardware.ts';
import { GPIOSET_BANNER, buildGpiosetArgs } from './gpiod-args.ts';
import { classifyGpiodError } from './gpiod-errors.ts';
import { GpiodToolError, describeFailure, type GpiodTools } from './gpiod-tools.ts';

export interface GpiosetLineOptions {
  chip: string;
  line: number;
  activeLow: boolean;
  /**
   * How long a fresh libgpiod 1 gpioset must stay up to count as holding the line (it prints
   * nothing on success). libgpiod 2 says so with its banner; this is then only a fallback.
   */
  settleMs?: number;
  backoff?: Partial<BackoffOptions>;
}

type GpiosetSpec = ChildSpec & { settleMs: number };

/**
 * An output line held by a `gpioset` child (v1 `--mode=signal`, v2 by default), run by the child supervisor:
 * a new level means stopping the old child and starting one with the new value. A child that dies while
 * holding its level is started again by the supervisor with back-off.
 */
export class GpiosetOutputLine extends EventEmitter<OutputLineEvents> implements OutputLine {
  private readonly supervisor: ChildSupervisor<GpiosetSpec>;
  /** Electrical level the current child drives (undefined: none held). */
  private level?: boolean;
  /** Level the next child is made for. */
  private target = false;
  private queue: Promise<void> = Promise.resolve();
  private closed = false;
  /** Set while a child of ours is starting: resolved once it holds the line. */
  private pending?: { resolve: () => void; reject: (err: Error) => void };
  private settleTimer?: NodeJS.Timeout;
  private banner = '';
  readonly source: string;

  constructor(
    tools: GpiodTools,
    private readonly opts: GpiosetLineOptions,
    private readonly logger: Logger,
  ) {
    super();
    this.source = `gpioset ${opts.chip} ${opts.line}`;
    this.supervisor = new ChildSupervisor<GpiosetSpec>({
      what: 'gpioset',
      logFields: { source: this.source },
      makeSpec: async () => {
        const version = await tools.detectVersion();
        const chip = await tools.resolveChip(opts.chip);
        const settleMs = opts.settleMs ?? 150;
        return {
          command: 'gpioset',
          args: buildGpiosetArgs(version, chip, opts.line, this.target),
          env: tools.env,
          settleMs: version.major === 1 ? settleMs : Math.max(settleMs, 2000),
        };
      },
      backoff: opts.backoff,
      log: logger,
      stopGraceMs: 2000,
      // gpioset holds a line silently: no stall timer.
      stallMs: null,
    });
    this.supervisor.on('started', ({ spec }) => {
      this.banner = '';
      clearTimeout(this.settleTimer);
      this.settleTimer = setTimeout(() => this.held(), spec.settleMs);
    });
    this.supervisor.on('data', (chunk) => {
      this.banner = (this.banner + chunk.toString('utf8')).slice(-4096);
      if (this.banner.split('\n').some((l) => GPIOSET_BANNER.test(l))) this.held();
    });
    this.supervisor.on('exit', (e) => this.exited(e));
  }

  set(active: boolean): Promise<void> {
    const task = this.queue.then(() => this.apply(active !== this.opts.activeLow));
    this.queue = task.catch(() => {});
    return task;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.queue;
    await this.release();
    this.emit('status', { state: 'stopped', source: this.source });
  }

  private async apply(level: boolean): Promise<void> {
    if (this.closed) return;
    if (this.supervisor.running && this.level === level) return;
    await this.release();
    this.target = level;
    try {
      await new Promise<void>((resolve, reject) => {
        this.pending = { resolve, reject };
        this.supervisor.start();
      });
    } catch (err) {
      await this.release();
      const failure = describeFailure(err);
      this.logger.error({ source: this.source, fault: failure.fault }, failure.message);
      this.emit('status', { state: 'failed', source: this.source, ...failure });
      throw err;
    }
  }

  /** The child holds the line: banner seen, or still up after settleMs. */
  private held(): void {
    clearTimeout(this.settleTimer);
    if (!this.supervisor.running || this.level === this.target) return;
    this.level = this.target;
    this.emit('status', { state: 'running', source: this.source, message: `driven ${this.level ? 'high' : 'low'}` });
    const p = this.pending;
    this.pending = undefined;
    p?.resolve();
  }

  private exited(e: ChildExit): void {
    clearTimeout(this.settleTimer);
    this.level = undefined;
    if (e.restartInMs === null) return; // stopped by us
    const failure = this.failureOf(e);
    const p = this.pending;
    if (p) {
      // Failed before holding the line: the set() that asked fails; the next request tries again.
      this.pending = undefined;
      p.reject(failure);
      return;
    }
    if (this.closed) return;
    // Died while holding the line (or a retry failed): the supervisor drives it again later.
    this.logger.error({ source: this.source, retryInMs: e.restartInMs }, failure.message);
    const status: GpioStatus = { state: 'restarting', source: this.source, fault: failure.fault, message: failure.message, retryInMs: e.restartInMs };
    this.emit('status', status);
  }

  private failureOf(e: ChildExit): GpiodToolError {
    if (e.problem === 'setup_failed') {
      const f = describeFailure(e.error);
      return new GpiodToolError(f.fault, f.message);
    }
    if (e.problem === 'missing_command') return new GpiodToolError('tool_missing', 'gpioset not found on PATH (install the gpiod package)');
    const text = e.stderrTail.join('\n');
    return new GpiodToolError(
      text ? classifyGpiodError(text) : 'exited',
      `gpioset ${e.signal ? `killed by ${e.signal}` : `exited with status ${e.code}`}${text ? `: ${text}` : ''}`,
    );
  }

  private async release(): Promise<void> {
    const p = this.pending;
    this.pending = undefined;
    await this.supervisor.stop(2000);
    this.level = undefined;
    p?.reject(new GpiodToolError('exited', 'gpioset released before it held the line'));
  }
}
