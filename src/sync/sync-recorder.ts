import { hostname } from 'node:os';
import { wallMonoPair } from '../clock.ts';
import type { Logger } from '../log/logger.ts';
import type { Extension } from '../runtime/extensions/extension.ts';
import { readTimeSync, type TimeSync } from '../runtime/time-sync.ts';
import { bootId } from '../storage/sidecar.ts';
import type { NewSyncEdge, Store, SyncRunRow } from '../storage/store.ts';
import type { GpioConfig } from '../triggers/gpio/gpio-config.ts';
import type { GpioTriggerController } from '../triggers/gpio/gpio-trigger-controller.ts';
import type { SyncEdge } from '../triggers/gpio/sync-pulser.ts';

/** Edges the database refused (a lock, a full disk) are kept and retried, up to this many. */
const MAX_PENDING = 100_000;
const RETRY_MS = 1000;

export interface SyncRecorderOptions {
  store: Store;
  gpio: GpioTriggerController;
  config: GpioConfig;
  log: Logger;
  /** The session and trial open now (stored with every edge). */
  context: () => { sessionId: number | null; trialId: number | null };
  /** Time sync of the box at start (default: chronyc / timedatectl). */
  timeSync?: () => Promise<TimeSync>;
}

/**
 * Stores every sync edge, in and out, in `sync_edges`, under a run (`sync_runs`) that names the host, the boot
 * (CLOCK_MONOTONIC restarts at boot), a wall↔monotonic pair, the box's time sync, and the sync lines' config with the
 * train's seed. Starts before the GPIO extension, so no edge comes before its run exists.
 */
export class SyncRecorder implements Extension {
  readonly name = 'sync';
  private run?: SyncRunRow;
  private pending: NewSyncEdge[] = [];
  private retryTimer?: NodeJS.Timeout;
  private lost = 0;
  private early: SyncEdge[] = [];
  private readonly onEdge = (e: SyncEdge): void => this.record(e);

  constructor(private readonly o: SyncRecorderOptions) {}

  get runId(): number | null {
    return this.run?.id ?? null;
  }

  async start(): Promise<void> {
    this.o.gpio.on('sync_edge', this.onEdge);
    const timeSync = await (this.o.timeSync ?? readTimeSync)().catch(() => null);
    const pair = wallMonoPair();
    const syncIn = this.o.config.inputs.filter((i) => i.mode === 'sync').map((i) => ({ line: i.line, active_low: i.active_low, debounce_ms: i.debounce_ms, label: i.label ?? null }));
    const out = this.o.config.outputs.sync_out;
    this.run = this.o.store.createSyncRun({
      host: hostname(),
      bootId: bootId(),
      pid: process.pid,
      mono0Us: pair.monoUs,
      wall0Us: pair.wallUs,
      uncertaintyUs: pair.uncertaintyUs,
      timeSync: timeSync ? JSON.stringify(timeSync) : null,
      config: { backend: this.o.config.backend, inputs: syncIn, sync_out: out ? { ...out, seed: this.o.gpio.syncOut?.seed ?? out.seed ?? null } : null },
    });
    this.o.log.info({ run: this.run.id, seed: this.o.gpio.syncOut?.seed }, 'sync edges recorded');
    const early = this.early;
    this.early = [];
    for (const e of early) this.record(e);
  }

  stop(): void {
    this.o.gpio.off('sync_edge', this.onEdge);
    clearTimeout(this.retryTimer);
    this.flush();
    if (this.pending.length) this.o.log.error({ edges: this.pending.length }, 'sync edges not stored at stop');
  }

  private record(e: SyncEdge): void {
    if (!this.run) {
      // Before the run exists (or when it could not be created): kept, bounded like the pending ones.
      this.early.push(e);
      if (this.early.length > MAX_PENDING) this.early.shift();
      return;
    }
    const ctx = this.o.context();
    this.pending.push({ runId: this.run.id, ...e, sessionId: ctx.sessionId, trialId: ctx.trialId });
    if (this.pending.length > MAX_PENDING) {
      this.pending.shift();
      this.lost++;
    }
    this.flush();
  }

  private flush(): void {
    if (!this.pending.length) return;
    try {
      this.o.store.insertSyncEdges(this.pending);
      this.pending = [];
      if (this.lost) this.o.log.error({ lost: this.lost }, 'sync edges lost while the database refused them');
      this.lost = 0;
    } catch (err) {
      this.o.log.warn({ err: (err as Error).message, pending: this.pending.length }, 'sync edges kept for retry');
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => this.flush(), RETRY_MS);
    }
  }
}
