import { statfs } from 'node:fs/promises';
import type { Config } from '../../config/schema.ts';
import { DiskGuard, mb, type DiskLevel, type DiskStatus } from '../../disk/disk-guard.ts';
import { applyRetention } from '../../disk/retention.ts';
import { thresholdBytes } from '../../disk/thresholds.ts';
import type { Logger } from '../../log/logger.ts';
import type { Store } from '../../storage/store.ts';
import type { EventBus } from '../event-bus.ts';
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
}

/**
 * Disk guard and retention: reports the level of the recordings volume (`disk`, `warning`), asks the command bus
 * to stop a trial below stop_free, refuses starts below min_free_to_start (the trial controller asks), and deletes
 * offloaded recordings when retention is on.
 */
export class DiskExtension implements Extension {
  readonly name = 'disk';
  private readonly guard: DiskGuard;
  private recording = false;
  private retaining: Promise<void> | null = null;
  private readonly onRecording = (on: boolean): void => {
    this.recording = on;
    this.guard.setRecording(on);
  };

  constructor(private readonly o: DiskExtensionOptions) {
    this.guard = new DiskGuard(o.root, o.config.disk, o.writeRate);
    this.guard.on('level', (st, prev) => this.onLevel(st, prev));
    this.guard.on('checked', (st) => this.onChecked(st));
    this.guard.on('error', (err) => o.log.warn({ err: err.message }, 'disk check failed'));
  }

  get status(): DiskStatus | null {
    return this.guard.status;
  }

  refuseStart(): Promise<string | null> {
    return this.guard.refuseStart();
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
  }

  private onLevel(st: DiskStatus, prev: DiskLevel): void {
    const { bus } = this.o;
    bus.report('disk', { ...st, previous_level: prev });
    if (st.level === 'warn') bus.report('warning', { message: `low disk: ${mb(st.free_bytes)} free (warn_free ${mb(st.warn_free_bytes)})`, disk: st });
    if (st.level === 'stop' && this.recording) {
      const message = `disk almost full: ${mb(st.free_bytes)} free, below stop_free ${mb(st.stop_free_bytes)}: recording stopped, files finalised`;
      bus.report('error', { command: null, code: 'disk_full', error: message, message, recoverable: false });
      this.o.raise('disk_full', { reason: 'disk full' });
    }
  }

  /** On every poll while free space is below keep_free (recordings get marked offloaded at any time), one run at a time. */
  private onChecked(st: DiskStatus): void {
    if (!this.o.config.disk.retention.enabled || st.level === 'unknown' || this.retaining) return;
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
