import { EventEmitter } from 'node:events';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Logger } from '../../log/logger.ts';
import { Backoff, type BackoffOptions } from './backoff.ts';
import type { GpioBias } from './gpio-config.ts';
import type { EdgeEvent, EdgeSourceEvents, GpioStatus } from './gpio-hardware.ts';
import { buildGpiomonArgs } from './gpiod-args.ts';
import { classifyGpiodError } from './gpiod-errors.ts';
import { describeFailure, type GpiodTools } from './gpiod-tools.ts';
import { parseGpiomonLine } from './gpiomon-output.ts';

export interface GpiomonGroup {
  chip: string;
  lines: readonly number[];
  bias: GpioBias;
  /** Asked of the kernel when the tools are libgpiod 2; libgpiod 1 edges come raw. */
  debounceUs: number;
}

/** gpiomon prints nothing once its lines are requested: call it running when it is still up after this long. */
const RUNNING_AFTER_MS = 300;
const STDERR_LINES_KEPT = 5;

/**
 * One supervised `gpiomon` child: parses its events, keeps its stderr in the log, and when it
 * exits (missing chip, unplugged device, killed) reports why and starts it again with back-off.
 */
export class GpiomonProcess extends EventEmitter<EdgeSourceEvents> {
  private child?: ChildProcessWithoutNullStreams;
  private exited?: Promise<void>;
  private retryTimer?: NodeJS.Timeout;
  private runningTimer?: NodeJS.Timeout;
  private stopping = true;
  private lastState?: GpioStatus['state'];
  private readonly backoff: Backoff;
  readonly source: string;

  constructor(
    private readonly tools: GpiodTools,
    private readonly group: GpiomonGroup,
    private readonly logger: Logger,
    backoff: Partial<BackoffOptions> = {},
  ) {
    super();
    this.backoff = new Backoff(backoff);
    this.source = `gpiomon ${group.chip} ${group.lines.join(',')}`;
  }

  start(): void {
    if (!this.stopping) return;
    this.stopping = false;
    void this.launch();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.runningTimer);
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 2000);
      await this.exited;
      clearTimeout(killer);
    }
    this.report({ state: 'stopped', source: this.source });
  }

  private report(status: GpioStatus): void {
    this.lastState = status.state;
    this.emit('status', status);
  }

  private async launch(): Promise<void> {
    // A retry stays 'restarting' (with its fault) until it runs.
    if (this.lastState !== 'restarting') this.report({ state: 'starting', source: this.source });
    let args: string[];
    let major: 1 | 2;
    try {
      const version = await this.tools.detectVersion();
      const chip = await this.tools.resolveChip(this.group.chip);
      major = version.major;
      args = buildGpiomonArgs(version, { ...this.group, chip, debounceUs: major === 2 ? this.group.debounceUs : 0 });
    } catch (err) {
      return this.retry(describeFailure(err), 0);
    }
    if (this.stopping) return;

    const startedAt = Date.now();
    const stderr: string[] = [];
    const kernelDebounceUs = major === 2 ? this.group.debounceUs : 0;
    const child = this.tools.spawn('gpiomon', args);
    this.child = child;
    this.logger.info({ args }, 'gpiomon started');
    let spawnError: Error | undefined;
    this.exited = new Promise((resolve) => child.once('close', () => resolve()));

    child.on('error', (err) => {
      spawnError = err;
    });
    createInterface({ input: child.stdout }).on('line', (line) => {
      const event = parseGpiomonLine(major, line);
      if (!event) {
        this.logger.debug({ line }, 'gpiomon output ignored');
        return;
      }
      // The kernel stamps a debounced edge when its debounce timer expires, one period after
      // the last bounce: take the period back off to get the time the line settled.
      const edge: EdgeEvent = {
        line: event.offset,
        rising: event.rising,
        monoUs: event.monoUs - kernelDebounceUs,
      };
      if (kernelDebounceUs > 0) edge.kernelDebounced = true;
      this.emit('edge', edge);
    });
    createInterface({ input: child.stderr }).on('line', (line) => {
      stderr.push(line);
      if (stderr.length > STDERR_LINES_KEPT) stderr.shift();
      this.logger.warn({ stderr: line, source: this.source }, 'gpiomon stderr');
    });
    this.runningTimer = setTimeout(() => {
      if (this.child === child && child.exitCode === null) this.report({ state: 'running', source: this.source });
    }, RUNNING_AFTER_MS);

    child.once('close', (code, signal) => {
      clearTimeout(this.runningTimer);
      if (this.child === child) this.child = undefined;
      if (this.stopping) return;
      const ranForMs = Date.now() - startedAt;
      if (spawnError) return this.retry(describeFailure(spawnError), ranForMs);
      const text = stderr.join('\n');
      const how = signal ? `killed by ${signal}` : `exited with status ${code}`;
      const fault = text ? classifyGpiodError(text) : 'exited';
      this.retry({ fault, message: text ? `gpiomon ${how}: ${text}` : `gpiomon ${how}` }, ranForMs);
    });
  }

  private retry(failure: { fault: GpioStatus['fault']; message: string }, ranForMs: number): void {
    if (this.stopping) return;
    const delay = this.backoff.next(ranForMs);
    this.logger.error({ source: this.source, fault: failure.fault, retryInMs: delay }, failure.message);
    this.report({ state: 'restarting', source: this.source, fault: failure.fault, message: failure.message, retryInMs: delay });
    this.retryTimer = setTimeout(() => void this.launch(), delay);
  }
}
