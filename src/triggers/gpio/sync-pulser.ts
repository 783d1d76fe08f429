import { EventEmitter } from 'node:events';
import { monoNowUs } from '../../clock.ts';
import type { Logger } from '../../log/logger.ts';
import type { SyncOutConfig } from './gpio-config.ts';
import type { OutputLine } from './gpio-hardware.ts';

/** A sync edge seen on an input (`sync` mode) or emitted on the sync output. */
export interface SyncEdge {
  direction: 'in' | 'out';
  line: number;
  /** The line became active (a pulse's onset). */
  active: boolean;
  /** CLOCK_MONOTONIC µs. */
  monoUs: number;
  /** gpio-kernel, gpio-sysfs-userspace (inputs), userspace-set (the output). */
  clock: 'gpio-kernel' | 'gpio-sysfs-userspace' | 'userspace-set';
  /** Half-width of the interval the edge lies in (µs); null for kernel stamps. */
  uncertaintyUs: number | null;
  /** Pulse number of the train out; null for inputs. */
  seq: number | null;
}

/** mulberry32: a small, well-mixed 32-bit generator, so a seed and the pattern regenerate the intervals exactly. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The onset-to-onset intervals (ms) of a train: Rsync-style uniform random integers, or the fixed period. */
export function trainIntervals(cfg: Pick<SyncOutConfig, 'pattern' | 'min_interval_ms' | 'max_interval_ms' | 'period_ms'>, seed: number): () => number {
  if (cfg.pattern === 'fixed') return () => cfg.period_ms;
  const rand = mulberry32(seed);
  const span = cfg.max_interval_ms - cfg.min_interval_ms + 1;
  return () => cfg.min_interval_ms + Math.floor(rand() * span);
}

export interface SyncPulserEvents {
  edge: [SyncEdge];
}

/**
 * Emits the sync pulse train on an output line while started: each onset one drawn interval after the previous
 * onset as driven (a slow tool lengthens that interval; the stored times are what counts). Each edge is stamped in user space: the monotonic time read just before
 * the line was asked to change and just after it was reported driven bracket the change; the edge is stored at the
 * middle with half the bracket as its uncertainty. Looping the output back to a `sync` input gives kernel stamps.
 */
export class SyncPulser extends EventEmitter<SyncPulserEvents> {
  private running = false;
  private loop?: Promise<void>;
  private wake?: { timer: NodeJS.Timeout; resolve: () => void };
  readonly seed: number;

  constructor(
    private readonly cfg: SyncOutConfig,
    private readonly line: OutputLine,
    private readonly logger: Logger,
    seed?: number,
  ) {
    super();
    this.seed = seed ?? cfg.seed ?? Math.floor(Math.random() * 0x100000000);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run().catch((err: unknown) => this.logger.error({ err }, 'sync train stopped'));
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.wake) {
      clearTimeout(this.wake.timer);
      this.wake.resolve();
    }
    await this.loop;
  }

  private async run(): Promise<void> {
    const next = trainIntervals(this.cfg, this.seed);
    const pulseUs = this.cfg.pulse_ms * 1000;
    // Start inactive; the first onset one interval later.
    await this.drive(false, null);
    let onset = monoNowUs() + next() * 1000;
    for (let seq = 0; this.running; seq++) {
      await this.sleepUntil(onset);
      if (!this.running) break;
      // Each interval counts from the onset as driven: a slow tool lengthens one interval, it never makes a burst.
      const at = (await this.drive(true, seq)) ?? monoNowUs();
      await this.sleepUntil(at + pulseUs);
      const end = (await this.drive(false, seq)) ?? monoNowUs();
      onset = Math.max(at + next() * 1000, end + pulseUs);
    }
    await this.drive(false, null).catch(() => undefined);
  }

  private sleepUntil(monoUs: number): Promise<void> {
    const ms = (monoUs - monoNowUs()) / 1000;
    if (ms <= 0 || !this.running) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = { timer, resolve };
    });
  }

  /** Drives the line; the edge's time (µs), or undefined when it was not driven. */
  private async drive(active: boolean, seq: number | null): Promise<number | undefined> {
    const before = monoNowUs();
    try {
      await this.line.set(active);
    } catch (err) {
      // The output line reports its failure as a GPIO status; the train goes on with the next edge.
      this.logger.warn({ err: (err as Error).message, seq }, 'sync output edge not driven');
      return undefined;
    }
    const after = monoNowUs();
    const at = Math.round((before + after) / 2);
    if (seq === null) return at; // the idle level at start and stop is not part of the train
    this.emit('edge', {
      direction: 'out',
      line: this.cfg.line,
      active,
      monoUs: at,
      clock: 'userspace-set',
      uncertaintyUs: (after - before) / 2,
      seq,
    });
    return at;
  }
}
