import { statfs } from 'node:fs/promises';
import type { Config } from '../../config/schema.ts';
import { DiskGuard, mb, type DiskLevel, type DiskStatus } from '../../disk/disk-guard.ts';
import type { SpaceReserve } from '../../disk/reserve.ts';
import { applyRetention } from '../../disk/retention.ts';
import { thresholdBytes } from '../../disk/thresholds.ts';
import type { Logger } from '../../log/logger.ts';
import type { Store } from '../../storage/store.ts';
import type { EventBus } from '../event-bus.ts';
import type { BoxDiskStatus } from '../status.ts';
import type { Extension } from './extension.ts';

export interface DiskExtensionOptions {
  config: Config;
  store: Store;
  log: Logger;
  bus: EventBus;
  root: string;
  /** Live write rate in bytes/s (the registry knows the cameras, the trial which record). */
  writeRate: () => number;
  /** Queue an internal command (the stop when the disk is almost full). */
  raise: (command: string, payload: unknown) => void;
  /**
   * What the start-up postponed because the disk was full (adopting orphan files, reconciling interrupted
   * recordings: both write): run at the first poll with room for a trial; trials are refused until it has run.
   */
  pendingRecovery?: () => Promise<void>;
  /** The database's reserve (`rigcam.reserve`), written again once its volume has room. */
  reserve?: SpaceReserve;
}

/**
 * Disk guard and retention: reports the level of the recordings volume and the database's (`disk`, `warning`), asks
 * the command bus to stop a trial below stop_free, refuses starts below min_free_to_start (the trial controller
 * asks), deletes offloaded recordings when retention is on, and runs the recovery a start on a full disk postponed.
 */
export class DiskExtension implements Extension {
  readonly name = 'disk';
  private readonly guard: DiskGuard;
  private recording = false;
  private retaining: Promise<void> | null = null;
  private pending: (() => Promise<void>) | null;
  private recovering: Promise<boolean> | null = null;
  private reserveRetryAt = 0;
  private reserving: Promise<void> | null = null;
  private readonly onRecording = (on: boolean): void => {
    this.recording = on;
    this.guard.setRecording(on);
  };

  constructor(private readonly o: DiskExtensionOptions) {
    this.pending = o.pendingRecovery ?? null;
    this.guard = new DiskGuard(o.root, o.config.disk, o.writeRate, o.store.file);
    this.guard.on('level', (st, prev) => this.onLevel(st, prev));
    this.guard.on('checked', (st) => this.onChecked(st));
    this.guard.on('error', (err) => o.log.warn({ err: err.message }, 'disk check failed'));
  }

  get status(): BoxDiskStatus | null {
    const st = this.guard.status;
    return st && { ...st, start_refused: this.refusal(st), recovery_pending: this.pending !== null };
  }

  /** Why a start must be refused now, or null; runs a postponed recovery first when there is room for it. */
  async refuseStart(): Promise<string | null> {
    const st = await this.guard.checkNow();
    if (this.pending && this.guard.refusal(st) === null) await this.recover();
    return this.refusal(st);
  }

  private refusal(st: DiskStatus): string | null {
    const disk = this.guard.refusal(st);
    if (!this.pending) return disk;
    return `the disk was full when rigcam started: the recordings on disk are registered and reconciled first, once there is room${disk ? ` (${disk})` : ''}`;
  }

  async start(): Promise<void> {
    this.o.bus.on('recording', this.onRecording);
    await this.guard.check();
    this.guard.start();
  }

  async stop(): Promise<void> {
    this.o.bus.off('recording', this.onRecording);
    this.guard.stop();
    await this.retaining;
    await this.recovering;
    await this.reserving;
  }

  private onLevel(st: DiskStatus, prev: DiskLevel): void {
    const { bus } = this.o;
    bus.report('disk', { ...st, previous_level: prev });
    const where = st.database && !st.database.same_volume && st.database.level === st.level ? `the database's volume ${st.database.path}` : 'the recordings volume';
    const free = where === 'the recordings volume' ? st.free_bytes : st.database!.free_bytes;
    if (st.level === 'warn') bus.report('warning', { message: `low disk: ${mb(free)} free on ${where} (warn_free ${mb(st.warn_free_bytes)})`, disk: st });
    if (st.level === 'stop' && this.recording) {
      const message = `disk almost full: ${mb(free)} free on ${where}, below stop_free: recording stopped, files finalised`;
      bus.report('error', { command: null, code: 'disk_full', error: message, message, recoverable: false });
      this.o.raise('disk_full', { reason: 'disk full' });
    }
  }

  private onChecked(st: DiskStatus): void {
    if (this.pending && this.guard.refusal(st) === null) void this.recover();
    this.keepReserve(st);
    this.retain(st);
  }

  /** The database's reserve, written (4 MB, fsynced) when missing: only idle, with room beyond what a start needs. */
  private keepReserve(st: DiskStatus): void {
    const reserve = this.o.reserve;
    if (!reserve || this.pending || this.recording || this.reserving || Date.now() < this.reserveRetryAt || reserve.held) return;
    const dbFree = st.database?.free_bytes ?? st.free_bytes;
    if (dbFree < st.min_free_to_start_bytes + 2 * reserve.bytes || this.guard.refusal(st) !== null) return;
    this.reserving = reserve
      .ensure()
      .then((ok) => {
        if (ok) return this.o.log.info({ file: reserve.file }, 'database reserve written');
        this.reserveRetryAt = Date.now() + 600_000; // not at every poll (a read-only or odd data dir)
        this.o.log.warn({ file: reserve.file }, 'database reserve could not be written: retried in 10 minutes');
      })
      .finally(() => (this.reserving = null));
  }

  /** Run the postponed recovery, one run at a time; it stays pending (retried at the next poll) if it fails. */
  private recover(): Promise<boolean> {
    const run = this.pending;
    if (!run) return Promise.resolve(true);
    this.recovering ??= run()
      .then(() => {
        this.pending = null;
        this.o.log.warn('the recovery postponed by a full disk at start-up has run: trials may start');
        return true;
      })
      .catch((err: unknown) => {
        this.o.log.error({ err: (err as Error).message }, 'postponed recovery failed: retried at the next disk poll');
        return false;
      })
      .finally(() => (this.recovering = null));
    return this.recovering;
  }

  /** On every poll while free space is below keep_free (recordings get marked offloaded at any time), one run at a time. */
  private retain(st: DiskStatus): void {
    if (!this.o.config.disk.retention.enabled || st.total_bytes === 0 || this.retaining) return;
    if (st.free_bytes >= thresholdBytes(this.o.config.disk.retention.keep_free, st.total_bytes)) return;
    this.retaining = this.retention(st)
      .catch((err: unknown) => this.o.log.error({ err: (err as Error).message }, 'retention failed'))
      .finally(() => (this.retaining = null));
  }

  private async retention(st: DiskStatus): Promise<void> {
    const keep = thresholdBytes(this.o.config.disk.retention.keep_free, st.total_bytes);
    const deleted = await applyRetention({
      store: this.o.store,
      root: this.o.root,
      log: this.o.log,
      keepFreeBytes: keep,
      verifiedOnly: this.o.config.disk.retention.require_verified_offload,
      freeBytes: async () => {
        const s = await statfs(this.o.root);
        return s.bavail * s.bsize;
      },
    });
    if (deleted.length) this.o.bus.report('retention', { deleted_recordings: deleted });
  }
}
