import { EventEmitter } from 'node:events';
import { statSync, statfsSync, type StatsFs, type Stats } from 'node:fs';
import { stat, statfs } from 'node:fs/promises';
import path from 'node:path';
import { thresholdBytes, type DiskConfig } from './thresholds.ts';

/** How the guard reads the file system: through the threadpool (polls), or at once (a start's check). */
interface FsReads {
  statfs: (p: string) => Promise<StatsFs>;
  stat: (p: string) => Promise<Stats>;
}
const threadpool: FsReads = { statfs: (p) => statfs(p), stat: (p) => stat(p) };
// statfs and stat answer from the kernel's superblock and inode caches in microseconds, while a threadpool round trip
// queues behind the recorders' own writes and fsyncs (4 threads): a start would wait for the disk it does not touch.
const immediate: FsReads = { statfs: async (p) => statfsSync(p), stat: async (p) => statSync(p) };

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
  /**
   * The database's volume (the data dir may be elsewhere than the recordings): the same thresholds apply there, and
   * `level` above is the worse of the two. `bytes` is the database with its WAL (the event journal lives in it).
   */
  database: { path: string; same_volume: boolean; free_bytes: number; total_bytes: number; level: DiskLevel; bytes: number } | null;
  checked_at: string;
}

const SEVERITY: Record<DiskLevel, number> = { ok: 0, warn: 1, stop: 2, unknown: 3 };

interface GuardEvents {
  /** The level changed (ok → warn → stop and back). */
  level: [DiskStatus, DiskLevel];
  /** Every check, whatever the level (retention looks at free space on each poll). */
  checked: [DiskStatus];
  error: [Error];
}

/**
 * Watches free space on the recordings volume (and the database's, when it is another one) with fs.statfs: every poll_idle_ms, every poll_recording_ms while
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
    /** The database file: its volume is watched too when it is not the recordings volume. */
    private readonly dbFile: string | null = null,
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

  /** Free space of the recordings (and the database's) volume now, read through the threadpool (the polls). */
  check(): Promise<DiskStatus> {
    return this.measure(threadpool);
  }

  /** The same check with the synchronous calls (see `immediate`): for a start, which must not queue behind writes. */
  checkNow(): Promise<DiskStatus> {
    return this.measure(immediate);
  }

  private async measure(fsr: FsReads): Promise<DiskStatus> {
    let free = 0;
    let total = 0;
    let level: DiskLevel;
    let dev: number | null = null;
    try {
      const s = await fsr.statfs(this.root);
      free = s.bavail * s.bsize;
      total = s.blocks * s.bsize;
      dev = (await fsr.stat(this.root)).dev;
      level = 'ok';
    } catch (err) {
      this.emit('error', err as Error);
      level = 'unknown';
    }
    const stopB = thresholdBytes(this.cfg.stop_free, total);
    const warnB = thresholdBytes(this.cfg.warn_free, total);
    if (level !== 'unknown') level = free < stopB ? 'stop' : free < warnB ? 'warn' : 'ok';
    const database = this.dbFile ? await this.checkDatabase(dev, free, total, level, fsr) : null;
    const rate = this.rate();
    const st: DiskStatus = {
      path: this.root,
      free_bytes: free,
      total_bytes: total,
      level: database && SEVERITY[database.level] > SEVERITY[level] ? database.level : level,
      bytes_per_second: Math.round(rate),
      minutes_left: rate > 0 ? Math.max(0, Math.round(((free - stopB) / rate / 60) * 10) / 10) : null,
      min_free_to_start_bytes: Math.round(thresholdBytes(this.cfg.min_free_to_start, total)),
      warn_free_bytes: Math.round(warnB),
      stop_free_bytes: Math.round(stopB),
      database,
      checked_at: new Date().toISOString(),
    };
    const prev = this.last?.level ?? 'ok';
    this.last = st;
    if (st.level !== prev) this.emit('level', st, prev);
    this.emit('checked', st);
    return st;
  }

  private async checkDatabase(recDev: number | null, recFree: number, recTotal: number, recLevel: DiskLevel, fsr: FsReads): Promise<NonNullable<DiskStatus['database']>> {
    const file = this.dbFile!;
    const dir = path.dirname(file);
    let bytes = 0;
    for (const f of [file, `${file}-wal`]) bytes += await fsr.stat(f).then((s) => s.size, () => 0);
    try {
      const dev = (await fsr.stat(dir)).dev;
      if (dev === recDev) return { path: dir, same_volume: true, free_bytes: recFree, total_bytes: recTotal, level: recLevel, bytes };
      const s = await fsr.statfs(dir);
      const free = s.bavail * s.bsize;
      const total = s.blocks * s.bsize;
      const level: DiskLevel = free < thresholdBytes(this.cfg.stop_free, total) ? 'stop' : free < thresholdBytes(this.cfg.warn_free, total) ? 'warn' : 'ok';
      return { path: dir, same_volume: false, free_bytes: free, total_bytes: total, level, bytes };
    } catch (err) {
      this.emit('error', err as Error);
      return { path: dir, same_volume: false, free_bytes: 0, total_bytes: 0, level: 'unknown', bytes };
    }
  }

  /**
   * Why a start must be refused, or null. Checks the disk now rather than trusting the last poll.
   */
  async refuseStart(): Promise<string | null> {
    return this.refusal(await this.checkNow());
  }

  /** Why a start must be refused at this status, or null. */
  refusal(st: DiskStatus): string | null {
    if (st.total_bytes === 0) return `cannot read free space of ${this.root}`; // statfs failed
    if (st.free_bytes < st.min_free_to_start_bytes)
      return `not enough free disk to start: ${mb(st.free_bytes)} free, ${mb(st.min_free_to_start_bytes)} required (disk.min_free_to_start)`;
    const db = st.database;
    if (db && !db.same_volume) {
      if (db.level === 'unknown') return `cannot read free space of ${db.path} (the database's volume)`;
      const need = thresholdBytes(this.cfg.min_free_to_start, db.total_bytes);
      if (db.free_bytes < need) return `not enough free disk for the database to start: ${mb(db.free_bytes)} free on ${db.path}, ${mb(need)} required (disk.min_free_to_start)`;
    }
    return null;
  }
}

export function mb(bytes: number): string {
  return `${Math.round(bytes / 1024 / 1024)} MB`;
}
