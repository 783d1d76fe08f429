import { EventEmitter } from 'node:events';
import type { Logger } from '../../log/logger.ts';
import { monoNowUs } from '../../clock.ts';
import { Backoff, type BackoffOptions } from '../../supervise/backoff.ts';
import type { GpioBias } from './gpio-config.ts';
import type { EdgeSource, EdgeSourceEvents, GpioFault, OutputLine, OutputLineEvents } from './gpio-hardware.ts';
import { DEFAULT_SYSFS_ROOT, pickSysfsChip, readSysfsChips, sysfsGpioNumber } from './sysfs-numbering.ts';

/**
 * The sysfs backend through the npm package `onoff` (optional dependency, loaded on first use)
 * for systems without a usable character device. Limits: sysfs has no bias (set pulls in
 * config.txt, e.g. `gpio=17=ip,pd`) and no event timestamps: an edge is stamped when Node sees
 * it, milliseconds late under load. Prefer the gpiod backend where it works.
 */

/** The part of onoff's Gpio class used here. */
export interface OnoffGpio {
  watch(callback: (err: Error | null | undefined, value: number) => void): void;
  unwatchAll(): void;
  write(value: 0 | 1): Promise<void>;
  unexport(): void;
}
export interface OnoffModule {
  Gpio: new (
    gpio: number,
    direction: 'in' | 'out' | 'high' | 'low',
    edge?: 'none' | 'rising' | 'falling' | 'both',
    options?: { debounceTimeout?: number; activeLow?: boolean; reconfigureDirection?: boolean },
  ) => OnoffGpio;
}

export async function loadOnoff(): Promise<OnoffModule> {
  const name = 'onoff'; // not a static import: onoff is optional and absent off the Pi
  const mod = (await import(name)) as Partial<OnoffModule> & { default?: OnoffModule };
  const gpio = mod.Gpio ?? mod.default?.Gpio;
  if (typeof gpio !== 'function') throw new Error('the onoff module has no Gpio class');
  return { Gpio: gpio };
}

export interface SysfsOptions {
  root?: string;
  chip?: string;
  backoff?: Partial<BackoffOptions>;
  load?: () => Promise<OnoffModule>;
}

/** sysfs has no kernel event time: an edge is stamped when Node's poll callback runs (trials store this clock). */
export const SYSFS_CLOCK_NOTE =
  'edges stamped in user space when rigcam sees them (not the kernel event time): late by the scheduling delay, more under load; the gpiod backend gives kernel timestamps';

function sysfsFault(err: unknown): { fault: GpioFault; message: string } {
  const e = err as NodeJS.ErrnoException;
  const message = e instanceof Error ? e.message : String(err);
  if (e?.code === 'ERR_MODULE_NOT_FOUND' || e?.code === 'MODULE_NOT_FOUND') {
    return { fault: 'tool_missing', message: 'the sysfs backend needs the npm package onoff (npm install onoff)' };
  }
  if (err instanceof RangeError) return { fault: 'line_invalid', message };
  if (e?.code === 'ENOENT') return { fault: 'chip_missing', message };
  if (e?.code === 'EACCES' || e?.code === 'EPERM') return { fault: 'permission', message };
  if (e?.code === 'EBUSY') return { fault: 'line_busy', message };
  if (e?.code === 'EINVAL') return { fault: 'line_invalid', message };
  return { fault: 'unknown', message };
}

async function resolveNumbers(root: string, chip: string, lines: readonly number[]): Promise<number[]> {
  const chips = await readSysfsChips(root);
  const picked = pickSysfsChip(chips, chip);
  if (!picked) {
    throw Object.assign(new Error(`no Raspberry Pi header gpiochip under ${root}`), { code: 'ENOENT' });
  }
  return lines.map((l) => sysfsGpioNumber(picked, l));
}

export class SysfsEdgeSource extends EventEmitter<EdgeSourceEvents> implements EdgeSource {
  private gpios: { line: number; gpio: OnoffGpio }[] = [];
  private retryTimer?: NodeJS.Timeout;
  private stopped = true;
  private readonly backoff: Backoff;
  readonly source: string;

  constructor(
    private readonly lines: readonly { line: number; bias: GpioBias }[],
    private readonly logger: Logger,
    private readonly opts: SysfsOptions = {},
  ) {
    super();
    this.backoff = new Backoff(opts.backoff);
    this.source = `sysfs inputs ${lines.map((l) => l.line).join(',')}`;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    void this.open();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.release();
    this.emit('status', { state: 'stopped', source: this.source });
  }

  private retrying = false;

  private async open(): Promise<void> {
    if (!this.retrying) this.emit('status', { state: 'starting', source: this.source });
    try {
      const onoff = await (this.opts.load ?? loadOnoff)();
      const numbers = await resolveNumbers(this.opts.root ?? DEFAULT_SYSFS_ROOT, this.opts.chip ?? 'auto', this.lines.map((l) => l.line));
      if (this.stopped) return;
      this.lines.forEach(({ line, bias }, i) => {
        if (bias !== 'as-is') this.logger.warn({ line, bias }, 'sysfs cannot set bias; set it in config.txt');
        const gpio = new onoff.Gpio(numbers[i]!, 'in', 'both');
        this.gpios.push({ line, gpio });
        gpio.watch((err, value) => {
          if (err) return this.fail(err);
          this.emit('edge', { line, rising: value === 1, monoUs: monoNowUs() });
        });
      });
      this.retrying = false;
      this.emit('status', { state: 'running', source: this.source, message: SYSFS_CLOCK_NOTE });
    } catch (err) {
      this.fail(err);
    }
  }

  private fail(err: unknown): void {
    this.release();
    if (this.stopped) return;
    const { fault, message } = sysfsFault(err);
    const delay = this.backoff.next();
    this.retrying = true;
    this.logger.error({ source: this.source, fault, retryInMs: delay }, message);
    this.emit('status', { state: 'restarting', source: this.source, fault, message, retryInMs: delay });
    this.retryTimer = setTimeout(() => void this.open(), delay);
  }

  private release(): void {
    for (const { gpio } of this.gpios) {
      try {
        gpio.unwatchAll();
        gpio.unexport();
      } catch (err) {
        this.logger.debug({ err }, 'sysfs unexport failed');
      }
    }
    this.gpios = [];
  }
}

export class SysfsOutputLine extends EventEmitter<OutputLineEvents> implements OutputLine {
  private gpio?: OnoffGpio;
  readonly source: string;

  constructor(
    private readonly line: number,
    private readonly activeLow: boolean,
    private readonly logger: Logger,
    private readonly opts: SysfsOptions = {},
  ) {
    super();
    this.source = `sysfs output ${line}`;
  }

  async set(active: boolean): Promise<void> {
    const level = active !== this.activeLow ? 1 : 0;
    try {
      if (!this.gpio) {
        const onoff = await (this.opts.load ?? loadOnoff)();
        const [n] = await resolveNumbers(this.opts.root ?? DEFAULT_SYSFS_ROOT, this.opts.chip ?? 'auto', [this.line]);
        this.gpio = new onoff.Gpio(n!, level ? 'high' : 'low');
      } else {
        await this.gpio.write(level);
      }
      this.emit('status', { state: 'running', source: this.source, message: `driven ${level ? 'high' : 'low'}` });
    } catch (err) {
      const { fault, message } = sysfsFault(err);
      this.logger.error({ source: this.source, fault }, message);
      this.emit('status', { state: 'failed', source: this.source, fault, message });
      throw err;
    }
  }

  async close(): Promise<void> {
    this.gpio?.unexport();
    this.gpio = undefined;
    this.emit('status', { state: 'stopped', source: this.source });
  }
}
