import { EventEmitter } from 'node:events';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Logger } from '../../log/logger.ts';
import { Backoff, type BackoffOptions } from './backoff.ts';
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

/**
 * An output line held by a `gpioset` child (v1 `--mode=signal`, v2 by default): a new level
 * means stopping the old child and starting one with the new value. If the child dies while
 * holding a level it is started again with back-off.
 */
export class GpiosetOutputLine extends EventEmitter<OutputLineEvents> implements OutputLine {
  private child?: ChildProcessWithoutNullStreams;
  private exited?: Promise<void>;
  private level?: boolean;
  private wanted?: boolean;
  private queue: Promise<void> = Promise.resolve();
  private retryTimer?: NodeJS.Timeout;
  private closed = false;
  private readonly backoff: Backoff;
  readonly source: string;

  constructor(
    private readonly tools: GpiodTools,
    private readonly opts: GpiosetLineOptions,
    private readonly logger: Logger,
  ) {
    super();
    this.backoff = new Backoff(opts.backoff);
    this.source = `gpioset ${opts.chip} ${opts.line}`;
  }

  set(active: boolean): Promise<void> {
    this.wanted = active;
    const task = this.queue.then(() => this.apply(active !== this.opts.activeLow));
    this.queue = task.catch(() => {});
    return task;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    await this.queue;
    await this.release();
    this.emit('status', { state: 'stopped', source: this.source });
  }

  private async apply(level: boolean): Promise<void> {
    if (this.closed) return;
    clearTimeout(this.retryTimer);
    if (this.child && this.level === level) return;
    await this.release();
    try {
      const version = await this.tools.detectVersion();
      const chip = await this.tools.resolveChip(this.opts.chip);
      const settleMs = this.opts.settleMs ?? 150;
      await this.hold(buildGpiosetArgs(version, chip, this.opts.line, level), version.major === 1 ? settleMs : Math.max(settleMs, 2000));
      this.level = level;
      this.emit('status', { state: 'running', source: this.source, message: `driven ${level ? 'high' : 'low'}` });
    } catch (err) {
      const failure = describeFailure(err);
      this.logger.error({ source: this.source, fault: failure.fault }, failure.message);
      this.emit('status', { state: 'failed', source: this.source, ...failure });
      throw err;
    }
  }

  /** Starts gpioset and resolves once it holds the line: banner seen, or still up after settleMs. */
  private hold(args: string[], settleMs: number): Promise<void> {
    const child = this.tools.spawn('gpioset', args);
    const stderr: string[] = [];
    const startedAt = Date.now();
    createInterface({ input: child.stderr }).on('line', (line) => {
      stderr.push(line);
      this.logger.warn({ stderr: line, source: this.source }, 'gpioset stderr');
    });
    this.child = child;
    this.exited = new Promise((resolve) => child.once('close', () => resolve()));
    return new Promise((resolve, reject) => {
      let settled = false;
      const settle = setTimeout(() => {
        settled = true;
        resolve();
      }, settleMs);
      createInterface({ input: child.stdout }).on('line', (line) => {
        if (settled || !GPIOSET_BANNER.test(line)) return;
        settled = true;
        clearTimeout(settle);
        resolve();
      });
      child.once('error', (err) => {
        if (settled) return;
        settled = true;
        clearTimeout(settle);
        reject(err);
      });
      child.once('close', (code, signal) => {
        if (this.child === child) this.child = undefined;
        const text = stderr.join('\n');
        const failure = new GpiodToolError(
          text ? classifyGpiodError(text) : 'exited',
          `gpioset ${signal ? `killed by ${signal}` : `exited with status ${code}`}${text ? `: ${text}` : ''}`,
        );
        if (!settled) {
          settled = true;
          clearTimeout(settle);
          return reject(failure);
        }
        if (this.closed || child.killed) return;
        // Died while holding the line: drive it again later.
        const delay = this.backoff.next(Date.now() - startedAt);
        this.logger.error({ source: this.source, retryInMs: delay }, failure.message);
        const status: GpioStatus = { state: 'restarting', source: this.source, fault: failure.fault, message: failure.message, retryInMs: delay };
        this.emit('status', status);
        this.retryTimer = setTimeout(() => {
          if (this.wanted !== undefined) this.set(this.wanted).catch(() => {});
        }, delay);
      });
    });
  }

  private async release(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    this.level = undefined;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 2000);
      await this.exited;
      clearTimeout(killer);
    }
  }
}
