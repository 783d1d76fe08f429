import { EventEmitter } from 'node:events';
import { statfs } from 'node:fs/promises';
import { thresholdBytes, type DiskConfig } from './thresholds.ts';

export type DiskLevel = 'ok' | 'warn' | 'stop' | 'unknown';

export interface DiskStatus {
  path: string;
  free_bytes: number;
  total_bytes: number;
  level: DiskLevel;
  /** Bytes per second being written (live bitrate of the recording cameras, or of all armed cameras when idle). */
  bytes_per_second: number;
  /** Minutes of recording left before stop_free is reached at that rate; null when nothing is streaming. */
  minutes_left: number | null;
  min_free_to_start_bytes: number;
  warn_free_bytes: number;
  stop_free_bytes: number;
  checked_at: string;
}

interface GuardEvents {
  /** The level changed (ok → warn → stop and back). */
  level: [DiskStatus, DiskLevel];
  /** Every check, whatever the level (retention looks at free space on each poll). */
  checked: [DiskStatus];
  error: [Error];
}

/**
 * Watches free space on the recordings volume with fs.statfs: every poll_idle_ms, every poll_recording_ms while
 * recording. It decides nothing itself beyond the level: the box refuses starts and stops trials on it.
 */
export class DiskGuard extends EventEmitter<GuardEvents> {
  private last: DiskStatus | null = null;
  private timer: NodeJS.Timeout | null = null;
  private recording = false;

  constructor(
    private readonly root: string,
    private readonly cfg: DiskConfig,
    /** Live write rate in bytes/s: the box knows which cameras record. */
    private readonly rate: () => number,
  ) {
    super();
  }

  get status(): DiskStatus | null {
    return this.last;
  }

  start(): void {
    void this.check();
    this.schedule();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Poll faster while recording. */
  setRecording(on: boolean): void {
    if (on === this.recording) return;
    this.recording = on;
    this.schedule();
  }

  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(
      () => {
        void this.check().finally(() => this.schedule());
      },
      this.recording ? this.cfg.poll_recording_ms : this.cfg.poll_idle_ms,
    );
    this.timer.unref();
  }

  async check(): Promise<DiskStatus> {
    let free = 0;
    let total = 0;
    let level: DiskLevel;
    try {
      const s = await statfs(this.root);
      free = s.bavail * s.bsize;
      total = s.blocks * s.bsize;
      level = 'ok';
    } catch (err) {
      this.emit('error', err as Error);
      level = 'unknown';
    }
    const stopB = thresholdBytes(this.cfg.stop_free, total);
    const warnB = thresholdBytes(this.cfg.warn_free, total);
    if (level !== 'unknown') level = free < stopB ? 'stop' : free < warnB ? 'warn' : 'ok';
    const rate = this.rate();
    const st: DiskStatus = {
      path: this.root,
      free_bytes: free,
      total_bytes: total,
      level,
      bytes_per_second: Math.round(rate),
      minutes_left: rate > 0 ? Math.max(0, Math.round(((free - stopB) / rate / 60) * 10) / 10) : null,
      min_free_to_start_bytes: Math.round(thresholdBytes(this.cfg.min_free_to_start, total)),
      warn_free_bytes: Math.round(warnB),
      stop_free_bytes: Math.round(stopB),
      checked_at: new Date().toISOString(),
    };
    const prev = this.last?.level ?? 'ok';
    this.last = st;
    if (level !== prev) this.emit('level', st, prev);
    this.emit('checked', st);
    return st;
  }

  /** Why a start must be refused, or null. Checks the disk now rather than trusting the last poll. */
  async refuseStart(): Promise<string | null> {
    const st = await this.check();
    if (st.level === 'unknown') return `cannot read free space of ${this.root}`;
    if (st.free_bytes < st.min_free_to_start_bytes)
      return `not enough free disk to start: ${mb(st.free_bytes)} free, ${mb(st.min_free_to_start_bytes)} required (disk.min_free_to_start)`;
    return null;
  }
}

export function mb(bytes: number): string {
  return `${Math.round(bytes / 1024 / 1024)} MB`;
}
