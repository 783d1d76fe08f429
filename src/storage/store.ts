import type { RunResult, Statement } from 'better-sqlite3';
import { fsyncPath } from './durable-file.ts';
import type { Db } from './database.ts';
import type { FrameRow } from '../timing/frame-row.ts';

export type RecordingState = 'recording' | 'complete' | 'interrupted';
export type TrialState = 'recording' | 'paused' | 'complete' | 'interrupted';

export interface SessionRow {
  id: number;
  name: string;
  metadata: string;
  started_at: string;
  stopped_at: string | null;
}

export interface TrialRow {
  id: number;
  session_id: number;
  number: number;
  label: string;
  state: TrialState;
  trigger_source: string;
  trigger_mono_us: number | null;
  metadata: string;
  started_at: string;
  stopped_at: string | null;
  /** The trial's one wall↔monotonic pair (µs), shared by all its recordings, and its uncertainty. */
  mono0_us: number | null;
  wall0_us: number | null;
  pair_uncertainty_us: number | null;
  /** The box's time sync at trial start, JSON ({synchronized, offset_us, tool}; "unknown" fields when no tool). */
  time_sync: string | null;
  /** The clock the trigger was stamped on: kernel (GPIO event, gpiod), user (sysfs, serial, HTTP arrival). */
  trigger_clock: string | null;
}

export interface RecordingRow {
  id: number;
  trial_id: number | null;
  camera_id: string;
  segment: number;
  path: string;
  csv_path: string;
  mp4_path: string | null;
  codec: string;
  encoder: string;
  width: number;
  height: number;
  fps_nominal: number;
  clock: string;
  mono0_us: number;
  wall0_us: number;
  trigger_source: string | null;
  trigger_mono_us: number | null;
  trigger_frame_index: number | null;
  /** How long frames were held before writing (a stop or pause known that late still cuts at its instant). */
  stop_hold_ms: number | null;
  /** Where capture times come from: v4l2-monotonic, rpicam-sensor, rpicam-wallclock, synthetic. */
  clock_source: string | null;
  /** JSON: a CSI sync camera's rpicam-vid --sync state when the file opened; null: no sync. */
  camera_sync: string | null;
  /** JSON: an externally triggered camera's trigger settings (pulse_line, lag_us, tolerance_us); null: free-running. */
  hw_trigger: string | null;
  /** First frame more than a frame period after the trigger: the gap (µs); null when on time. */
  late_start_us: number | null;
  /** Video obtained before the trigger, seconds. */
  preroll_s: number | null;
  state: RecordingState;
  stop_reason: string | null;
  frame_count: number;
  dropped: number;
  bytes: number;
  offloaded_at: string | null;
  /** Set when the copy's SHA-256 of every file matched the stored ones (POST /api/recordings/:id/offloaded). */
  offload_verified_at: string | null;
  deleted_at: string | null;
  started_at: string;
  stopped_at: string | null;
}

/** The files of a recording that carry a checksum. */
export type ChecksumKind = 'video' | 'csv' | 'sidecar' | 'mp4';
export interface ChecksumRow {
  recording_id: number;
  kind: ChecksumKind;
  /** Relative to the recordings root. */
  path: string;
  bytes: number;
  sha256: string;
  computed_at: string;
}

/** A recording (aliased r) finished and still on the box: its files are final. */
const FINISHED_ON_BOX = "r.state != 'recording' AND r.deleted_at IS NULL";
/** ...and not offloaded: what an offload waits for. */
const WAITING_FOR_OFFLOAD = `${FINISHED_ON_BOX} AND r.offloaded_at IS NULL`;

/** A recording with the bytes of its stored checksums (null: not hashed yet). */
export type OffloadSizedRow = RecordingRow & { hashed_bytes: number | null };

export interface NewRecording {
  trialId: number | null;
  cameraId: string;
  segment: number;
  path: string;
  csvPath: string;
  codec: string;
  encoder: string;
  width: number;
  height: number;
  fpsNominal: number;
  clock: string;
  mono0Us: number;
  wall0Us: number;
  triggerSource: string | null;
  triggerMonoUs: number | null;
  stopHoldMs?: number | null;
  clockSource?: string | null;
  cameraSync?: string | null;
  hwTrigger?: string | null;
}

export interface EventInput {
  kind: 'command' | 'status' | 'marker' | 'log';
  name: string;
  source?: string | null;
  cameraId?: string | null;
  sessionId?: number | null;
  trialId?: number | null;
  payload?: unknown;
  result?: unknown;
  monoUs: number;
  wallUs?: number;
}

export type SalvagedSession = Pick<SessionRow, 'name' | 'metadata' | 'started_at' | 'stopped_at'>;
export type SalvagedTrial = Pick<TrialRow, 'number' | 'label' | 'state' | 'trigger_source' | 'trigger_mono_us' | 'metadata' | 'started_at' | 'stopped_at'> & { session: string };
export type SalvagedRecording = Pick<RecordingRow, 'path' | 'mp4_path' | 'offloaded_at' | 'deleted_at' | 'trigger_frame_index'>;
export interface SalvagedEvent {
  wall_us: number;
  mono_us: number;
  kind: string;
  name: string;
  source: string | null;
  camera_id: string | null;
  payload: string | null;
  result: string | null;
  session: string | null;
  trial_number: number | null;
}
/** What could be read from a quarantined database; each table on its own (a corrupt page loses one table, not all). */
export interface Salvage {
  sessions: SalvagedSession[];
  trials: SalvagedTrial[];
  recordings: SalvagedRecording[];
  events: SalvagedEvent[];
  /** Tables that could not be read, with SQLite's reason. */
  failures: string[];
}

/** Read what SQLite can still read of a (corrupt) database, table by table. */
export function salvageFrom(db: Db): Salvage {
  const failures: string[] = [];
  const read = <T>(table: string, sql: string): T[] => {
    try {
      return db.prepare(sql).all() as T[];
    } catch (err) {
      failures.push(`${table}: ${(err as Error).message}`);
      return [];
    }
  };
  return {
    sessions: read('sessions', 'SELECT name, metadata, started_at, stopped_at FROM sessions'),
    trials: read(
      'trials',
      `SELECT s.name AS session, t.number, t.label, t.state, t.trigger_source, t.trigger_mono_us, t.metadata, t.started_at, t.stopped_at
       FROM trials t JOIN sessions s ON s.id = t.session_id`,
    ),
    recordings: read('recordings', 'SELECT path, mp4_path, offloaded_at, deleted_at, trigger_frame_index FROM recordings'),
    events: read(
      'events',
      `SELECT e.wall_us, e.mono_us, e.kind, e.name, e.source, e.camera_id, e.payload, e.result, s.name AS session, t.number AS trial_number
       FROM events e LEFT JOIN sessions s ON s.id = e.session_id LEFT JOIN trials t ON t.id = e.trial_id ORDER BY e.id`,
    ),
    failures,
  };
}

const nowIso = (): string => new Date().toISOString();

/** A frame's row as stored in the `frames` table. */
export interface FrameDbRow {
  frame_index: number;
  capture_us: number;
  wall_us: number;
  interval_us: number | null;
  missing_before: number;
  pts: number;
  keyframe: number;
  bytes: number;
  flags: string;
}

/** One bucket of `Store.frameSeries`: frames i_min..i_max (by index), captured t_min..t_max. */
export interface SeriesBucket {
  b: number;
  t_min: number;
  t_max: number;
  i_min: number;
  i_max: number;
  frames: number;
  interval_min: number | null;
  interval_max: number | null;
  missing: number;
  keyframes: number;
}

/** A `frames` row as the FrameRow the timing CSV is written from. */
export function toFrameRow(recordingId: number, f: FrameDbRow): FrameRow {
  return {
    recordingId,
    index: f.frame_index,
    captureUs: f.capture_us,
    wallUs: f.wall_us,
    intervalUs: f.interval_us,
    missingBefore: f.missing_before,
    pts: f.pts,
    keyframe: f.keyframe === 1,
    bytes: f.bytes,
    flags: f.flags,
  };
}

export interface CameraDbRow {
  id: string;
  name: string | null;
  backend: string;
  stable_id: string | null;
  device_path: string | null;
}

export type MarkerRow = { id: number; name: string; mono_us: number; source: string | null };

/** One start of the GPIO sync lines on one boot: every sync edge belongs to one (CLOCK_MONOTONIC restarts at boot). */
export interface SyncRunRow {
  id: number;
  host: string;
  boot_id: string;
  pid: number;
  started_at: string;
  /** A wall↔monotonic pair taken at the start (µs) and its uncertainty. */
  mono0_us: number;
  wall0_us: number;
  pair_uncertainty_us: number | null;
  /** The box's time sync at the start, JSON ({synchronized, offset_us, tool}). */
  time_sync: string | null;
  /** The sync lines as configured (JSON), with the seed the train out used. */
  config: string;
}

export interface NewSyncRun {
  host: string;
  bootId: string;
  pid: number;
  mono0Us: number;
  wall0Us: number;
  uncertaintyUs: number | null;
  timeSync: string | null;
  config: unknown;
}

/** A sync edge: in (a `sync` input, stamped by the kernel) or out (the train this box emits, stamped when set). */
export interface NewSyncEdge {
  runId: number;
  direction: 'in' | 'out';
  line: number;
  /** The line became active (the pulse's onset) rather than inactive. */
  active: boolean;
  /** CLOCK_MONOTONIC µs. */
  monoUs: number;
  /** gpio-kernel (libgpiod event time), gpio-sysfs-userspace, or userspace-set (an output, see uncertainty). */
  clock: string;
  /** Half-width of the interval the edge is known to lie in (µs); null for kernel stamps. */
  uncertaintyUs: number | null;
  /** Pulse number of the train out (0-based); null for inputs. */
  seq: number | null;
  sessionId: number | null;
  trialId: number | null;
}

export interface SyncEdgeRow {
  id: number;
  run_id: number;
  direction: 'in' | 'out';
  line: number;
  active: number;
  mono_us: number;
  clock: string;
  uncertainty_us: number | null;
  seq: number | null;
  session_id: number | null;
  trial_id: number | null;
  host: string;
  boot_id: string;
}

/** Sync health of one line in one run: how many edges, the last one. */
export interface SyncLineHealth {
  run_id: number;
  direction: 'in' | 'out';
  line: number;
  edges: number;
  pulses: number;
  last_mono_us: number;
}

/** What `rigcam recordings list` shows of a recording. */
export type RecordingListRow = Pick<RecordingRow, 'id' | 'path' | 'state' | 'frame_count' | 'dropped' | 'bytes' | 'offloaded_at' | 'deleted_at' | 'started_at'>;

/** SQLite's default `wal_autocheckpoint`: the WAL size (pages) at which a checkpoint is due, whoever runs it. */
const AUTOCHECKPOINT_PAGES = 1000;

/**
 * All SQL of rigcam in one place. Each statement is prepared once, on first use, and cached (better-sqlite3
 * statements are reusable); the connection itself is private to src/storage. Paths are stored relative to the
 * recordings root.
 */
export class Store {
  private readonly statements = new Map<string, Statement>();

  constructor(private readonly db: Db) {}

  /** The database file (the disk guard watches its volume). */
  get file(): string {
    return this.db.name;
  }

  /** The prepared statement for this SQL text, prepared on first use. */
  private q(sql: string): Statement {
    let st = this.statements.get(sql);
    if (!st) {
      st = this.db.prepare(sql);
      this.statements.set(sql, st);
    }
    return st;
  }

  /** Run `fn` in one transaction (nested calls become savepoints). */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  /**
   * Run `fn`'s writes as one commit: a trial start's trial, clock and recording rows are one WAL append instead of
   * one per statement (each a write of its pages and the WAL header, on the trigger path). Unlike transaction(),
   * what `fn` wrote before it threw is committed too, and the error rethrown: the caller undoes a failed start
   * itself, from the rows as they were. A failed commit is rolled back and thrown. Inside an outer transaction the
   * outer one decides.
   */
  batch<T>(fn: () => T): T {
    if (this.db.inTransaction) return fn();
    this.db.exec('BEGIN');
    let result: T;
    try {
      result = fn();
    } catch (err) {
      try {
        this.endBatch();
      } catch {
        // fn's error says more; the rolled-back rows are what the caller's undo finds missing
      }
      throw err;
    }
    this.endBatch();
    return result;
  }

  private endBatch(): void {
    try {
      if (this.db.inTransaction) this.db.exec('COMMIT');
    } catch (err) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      throw err;
    }
  }

  /**
   * Run `fn` as one transaction that is on disk when this returns: the rows that create and finish trials and
   * recordings must survive a power cut, while frame batches stay cheap (synchronous=NORMAL: WAL not synced per
   * commit). synchronous=FULL syncs the WAL at this commit, and with it every earlier commit. Inside an outer
   * transaction (a rebuild) the outer one decides.
   */
  durably<T>(fn: () => T): T {
    if (this.db.inTransaction) return fn();
    this.db.pragma('synchronous = FULL');
    try {
      return this.db.transaction(fn)();
    } finally {
      this.db.pragma('synchronous = NORMAL');
    }
  }

  /**
   * Whether another process may open this database: not in memory (tests), not with exclusive locking (the last
   * resort on a full disk keeps the WAL index in this process).
   */
  get shared(): boolean {
    return !this.db.memory && String(this.db.pragma('locking_mode', { simple: true })).toLowerCase() !== 'exclusive';
  }

  /**
   * Whether this connection checkpoints the WAL itself, as SQLite does by default when a commit takes it past 1000
   * pages: that commit then copies the pages into the database and fsyncs the WAL and the database, all on the event
   * loop (10 ms here, hundreds on an SD card, every 25-100 s of recording). Off while WalCheckpointExtension
   * checkpoints from another process; on again when it stops. Off, the WAL file is also cut back to what it holds
   * whenever it starts over (journal_size_limit 0), so its size says how much is waiting for a checkpoint.
   */
  setAutoCheckpoint(on: boolean): void {
    this.db.pragma(`wal_autocheckpoint = ${on ? AUTOCHECKPOINT_PAGES : 0}`);
    this.db.pragma(`journal_size_limit = ${on ? -1 : 0}`);
  }

  /** The WAL size at which SQLite itself would checkpoint (1000 pages of this database, with their frame headers). */
  get walCheckpointBytes(): number {
    return AUTOCHECKPOINT_PAGES * (Number(this.db.pragma('page_size', { simple: true })) + 24);
  }

  /**
   * Make every transaction committed so far durable without blocking the event loop: the WAL file is fsynced on the
   * threadpool, which is what synchronous=FULL does on the loop at commit (SQLite has written the commit's frames to
   * the WAL by then; an fsync of the file through any descriptor flushes them). When there is no WAL (a checkpoint
   * with the last connection closing removed it), the database file is synced instead. For a caller that runs this
   * fsync alongside others (a trial start: see StartSyncs) and announces nothing before it resolves.
   */
  async syncCommitted(): Promise<void> {
    if (this.db.memory) return;
    for (const file of [`${this.db.name}-wal`, this.db.name]) {
      try {
        await fsyncPath(file);
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' && file !== this.db.name) continue;
        throw err;
      }
    }
  }

  /**
   * Run `fn` in one transaction without waiting for a lock another process holds: SQLITE_BUSY at once, for
   * writes the caller keeps and retries (frame rows), so a held lock costs the event loop nothing.
   */
  transactionNoWait<T>(fn: () => T): T {
    // Cached statements: db.pragma() prepares its statement on every call, three per frame flush.
    const wait = this.q('PRAGMA busy_timeout').pluck().get() as number;
    this.q('PRAGMA busy_timeout = 0').run();
    try {
      return this.db.transaction(fn)();
    } finally {
      this.q(`PRAGMA busy_timeout = ${wait}`).run();
    }
  }

  close(): void {
    this.statements.clear();
    this.db.close();
  }

  upsertCamera(c: { id: string; name?: string | null; backend: string; stableId?: string | null; devicePath?: string | null }): void {
    this
      .q(
        `INSERT INTO cameras (id, name, backend, stable_id, device_path, updated_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT(id) DO UPDATE SET name = excluded.name, backend = excluded.backend, stable_id = excluded.stable_id,
           device_path = excluded.device_path, updated_at = excluded.updated_at`,
      )
      .run(c.id, c.name ?? null, c.backend, c.stableId ?? null, c.devicePath ?? null, nowIso());
  }

  // ---- sessions -------------------------------------------------------------------------------------
  sessionByName(name: string): SessionRow | undefined {
    return this.q('SELECT * FROM sessions WHERE name = ?').get(name) as SessionRow | undefined;
  }

  session(id: number): SessionRow | undefined {
    return this.q('SELECT * FROM sessions WHERE id = ?').get(id) as SessionRow | undefined;
  }

  /** The session of that name, created when new (its metadata merged when given). */
  openSession(name: string, metadata: Record<string, unknown> = {}): SessionRow {
    const existing = this.sessionByName(name);
    if (existing) {
      if (Object.keys(metadata).length) {
        const merged = { ...(JSON.parse(existing.metadata) as Record<string, unknown>), ...metadata };
        this.q('UPDATE sessions SET metadata = ?, stopped_at = NULL WHERE id = ?').run(JSON.stringify(merged), existing.id);
      } else this.q('UPDATE sessions SET stopped_at = NULL WHERE id = ?').run(existing.id);
      return this.session(existing.id)!;
    }
    const info = this
      .q('INSERT INTO sessions (name, metadata, started_at) VALUES (?, ?, ?)')
      .run(name, JSON.stringify(metadata), nowIso());
    return this.session(Number(info.lastInsertRowid))!;
  }

  closeSession(id: number): void {
    this.q('UPDATE sessions SET stopped_at = ? WHERE id = ? AND stopped_at IS NULL').run(nowIso(), id);
  }

  listSessions(): Array<SessionRow & { trials: number }> {
    return this
      .q('SELECT s.*, (SELECT COUNT(*) FROM trials t WHERE t.session_id = s.id) AS trials FROM sessions s ORDER BY s.id DESC')
      .all() as Array<SessionRow & { trials: number }>;
  }

  // ---- trials ---------------------------------------------------------------------------------------
  nextTrialNumber(sessionId: number): number {
    const r = this.q('SELECT MAX(number) AS n FROM trials WHERE session_id = ?').get(sessionId) as { n: number | null };
    return (r.n ?? 0) + 1;
  }

  trialExists(sessionId: number, number: number): boolean {
    return Boolean(this.q('SELECT 1 FROM trials WHERE session_id = ? AND number = ?').get(sessionId, number));
  }

  createTrial(t: { sessionId: number; number: number; label: string; triggerSource: string; triggerMonoUs: number | null; metadata?: Record<string, unknown> }): TrialRow {
    // Not synced on its own: the recordings created right after it commit durably, and that sync covers this row.
    const info = this
      .q(
        `INSERT INTO trials (session_id, number, label, state, trigger_source, trigger_mono_us, metadata, started_at)
         VALUES (?, ?, ?, 'recording', ?, ?, ?, ?)`,
      )
      .run(t.sessionId, t.number, t.label, t.triggerSource, t.triggerMonoUs, JSON.stringify(t.metadata ?? {}), nowIso());
    return this.trial(Number(info.lastInsertRowid))!;
  }

  trialByNumber(sessionId: number, number: number): TrialRow | undefined {
    return this.q('SELECT * FROM trials WHERE session_id = ? AND number = ?').get(sessionId, number) as TrialRow | undefined;
  }

  /** At start-up: trials left open by a crash are over (their recordings are reconciled separately). */
  interruptOpenTrials(): void {
    this.q("UPDATE trials SET state = 'interrupted', stopped_at = COALESCE(stopped_at, ?) WHERE state IN ('recording', 'paused')").run(nowIso());
  }

  /** Close the trials re-created from the files on disk: interrupted when one of their recordings is. */
  closeRebuiltTrials(): void {
    this.q(
      `UPDATE trials SET stopped_at = COALESCE(stopped_at, started_at), state = CASE WHEN EXISTS
         (SELECT 1 FROM recordings r WHERE r.trial_id = trials.id AND r.state = 'interrupted') THEN 'interrupted' ELSE 'complete' END
       WHERE trigger_source = 'unknown' AND state = 'recording'`,
    ).run();
  }

  trial(id: number): TrialRow | undefined {
    return this.q('SELECT * FROM trials WHERE id = ?').get(id) as TrialRow | undefined;
  }

  trialsOfSession(sessionId: number): TrialRow[] {
    return this.q('SELECT * FROM trials WHERE session_id = ? ORDER BY number').all(sessionId) as TrialRow[];
  }

  /** A page of a session's trials by number (after `afterNumber`, at most `limit`), and how many it has. */
  trialsPage(sessionId: number, afterNumber: number, limit: number): { trials: TrialRow[]; total: number } {
    const trials = this.q('SELECT * FROM trials WHERE session_id = ? AND number > ? ORDER BY number LIMIT ?').all(sessionId, afterNumber, limit) as TrialRow[];
    const total = (this.q('SELECT count(*) AS n FROM trials WHERE session_id = ?').get(sessionId) as { n: number }).n;
    return { trials, total };
  }

  /** The markers and recordings of a set of trials: indexed lookups per trial, on statements prepared once. */
  trialDetails(trialIds: readonly number[]): { markers: Map<number, MarkerRow[]>; recordings: Map<number, RecordingRow[]> } {
    const markers = new Map<number, MarkerRow[]>();
    const recordings = new Map<number, RecordingRow[]>();
    this.transaction(() => {
      for (const id of trialIds) {
        markers.set(id, this.markersOfTrial(id));
        recordings.set(id, this.recordingsOfTrial(id));
      }
    });
    return { markers, recordings };
  }

  /** The trial's one wall↔monotonic pair, the box's time sync at its start (JSON) and its trigger's clock. */
  setTrialClock(id: number, c: { mono0Us?: number; wall0Us?: number; uncertaintyUs?: number; timeSync?: string; triggerClock?: string }): void {
    this.q(
      `UPDATE trials SET mono0_us = COALESCE(?, mono0_us), wall0_us = COALESCE(?, wall0_us), pair_uncertainty_us = COALESCE(?, pair_uncertainty_us),
         time_sync = COALESCE(?, time_sync), trigger_clock = COALESCE(?, trigger_clock) WHERE id = ?`,
    ).run(c.mono0Us ?? null, c.wall0Us ?? null, c.uncertaintyUs ?? null, c.timeSync ?? null, c.triggerClock ?? null, id);
  }

  /**
   * Forget a trial whose start failed part-way: its frames, recordings and the trial row, in one durable
   * transaction, so its number is free again (the caller has removed the files those recordings created).
   */
  discardTrial(id: number): void {
    this.durably(() => {
      this.q('DELETE FROM frames WHERE recording_id IN (SELECT id FROM recordings WHERE trial_id = ?)').run(id);
      this.q('DELETE FROM recordings WHERE trial_id = ?').run(id);
      this.q('DELETE FROM trials WHERE id = ?').run(id);
    });
  }

  /**
   * A trial's end (complete, interrupted) is committed durably, unless `durable` is false: then the caller owes an
   * await of `syncCommitted()` before anyone is told (a trial stop: the fsync off the event loop).
   */
  setTrialState(id: number, state: TrialState, durable = true): void {
    const stopped = state === 'complete' || state === 'interrupted' ? nowIso() : null;
    const st = this.q('UPDATE trials SET state = ?, stopped_at = COALESCE(?, stopped_at) WHERE id = ?');
    if (stopped && durable) this.durably(() => st.run(state, stopped, id));
    else st.run(state, stopped, id);
  }

  // ---- recordings -----------------------------------------------------------------------------------
  /**
   * Register a recording, durably (synchronous=FULL) unless `durable` is false: then the caller owes an await of
   * `syncCommitted()` before anyone is told the recording exists (a trial start, which syncs it with its files).
   */
  createRecording(r: NewRecording, durable = true): number {
    const run = (): RunResult => this
      .q(
        `INSERT INTO recordings (trial_id, camera_id, segment, path, csv_path, codec, encoder, width, height, fps_nominal, clock,
           mono0_us, wall0_us, trigger_source, trigger_mono_us, stop_hold_ms, clock_source, camera_sync, hw_trigger, state, started_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'recording', ?)`,
      )
      .run(r.trialId, r.cameraId, r.segment, r.path, r.csvPath, r.codec, r.encoder, r.width, r.height, r.fpsNominal, r.clock,
        r.mono0Us, r.wall0Us, r.triggerSource, r.triggerMonoUs, r.stopHoldMs ?? null, r.clockSource ?? null, r.cameraSync ?? null, r.hwTrigger ?? null, nowIso());
    const info = durable ? this.durably(run) : run();
    return Number(info.lastInsertRowid);
  }

  recording(id: number): RecordingRow | undefined {
    return this.q('SELECT * FROM recordings WHERE id = ?').get(id) as RecordingRow | undefined;
  }

  /** The recording whose video (the .ts, or the .mp4 it was remuxed to) is this file. */
  recordingByVideo(relPath: string): RecordingRow | undefined {
    return this.q('SELECT * FROM recordings WHERE path = ? OR mp4_path = ? LIMIT 1').get(relPath, relPath) as RecordingRow | undefined;
  }

  /** Every video path the database knows (.ts and .mp4), for finding the files it does not know in one pass. */
  knownVideoPaths(): Set<string> {
    const out = new Set<string>();
    for (const r of this.q('SELECT path, mp4_path FROM recordings').iterate() as IterableIterator<{ path: string; mp4_path: string | null }>) {
      out.add(r.path);
      if (r.mp4_path) out.add(r.mp4_path);
    }
    return out;
  }

  // ---- rebuild: what a quarantined database still gives ------------------------------------------------------
  /** Put back a salvaged session (name, metadata, times): the one of that name, created when new. */
  restoreSession(s: SalvagedSession): SessionRow {
    this.q('INSERT INTO sessions (name, metadata, started_at, stopped_at) VALUES (?, ?, ?, ?) ON CONFLICT(name) DO NOTHING').run(s.name, s.metadata, s.started_at, s.stopped_at);
    return this.sessionByName(s.name)!;
  }

  restoreTrial(sessionId: number, t: SalvagedTrial): TrialRow {
    this
      .q(
        `INSERT INTO trials (session_id, number, label, state, trigger_source, trigger_mono_us, metadata, started_at, stopped_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(session_id, number) DO NOTHING`,
      )
      .run(sessionId, t.number, t.label, t.state, t.trigger_source, t.trigger_mono_us, t.metadata, t.started_at, t.stopped_at);
    return this.trialByNumber(sessionId, t.number)!;
  }

  restoreEvent(e: SalvagedEvent, sessionId: number | null, trialId: number | null): void {
    this
      .q(`INSERT INTO events (wall_us, mono_us, kind, name, source, camera_id, session_id, trial_id, payload, result) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
      .run(e.wall_us, e.mono_us, e.kind, e.name, e.source, e.camera_id, sessionId, trialId, e.payload, e.result);
  }

  /** What a salvaged recording row knew that its files do not say: copied off the box, remuxed, deleted. */
  restoreRecordingMarks(id: number, r: Pick<SalvagedRecording, 'offloaded_at' | 'deleted_at' | 'trigger_frame_index'>): void {
    this
      .q('UPDATE recordings SET offloaded_at = COALESCE(offloaded_at, ?), deleted_at = COALESCE(deleted_at, ?), trigger_frame_index = COALESCE(trigger_frame_index, ?) WHERE id = ?')
      .run(r.offloaded_at, r.deleted_at, r.trigger_frame_index, id);
  }

  /** Sessions, trials, events and recording marks of every recording the database knows (for a rebuild's salvage). */
  salvage(): Salvage {
    return salvageFrom(this.db);
  }

  recordingByPath(relPath: string): RecordingRow | undefined {
    return this.q('SELECT * FROM recordings WHERE path = ?').get(relPath) as RecordingRow | undefined;
  }

  /** Every recording, newest first, as `rigcam recordings list` shows them. */
  listRecordings(): RecordingListRow[] {
    return this.q('SELECT id, path, state, frame_count, dropped, bytes, offloaded_at, deleted_at, started_at FROM recordings ORDER BY id DESC').all() as RecordingListRow[];
  }

  recordingsOfTrial(trialId: number): RecordingRow[] {
    return this.q('SELECT * FROM recordings WHERE trial_id = ? ORDER BY camera_id, segment').all(trialId) as RecordingRow[];
  }

  recordingsInState(state: RecordingState): RecordingRow[] {
    return this.q('SELECT * FROM recordings WHERE state = ? ORDER BY id').all(state) as RecordingRow[];
  }

  /** A recording's bounds against its trigger: the late-start gap (µs, null: on time) and the pre-roll obtained (s). */
  setRecordingBounds(recordingId: number, b: { lateStartUs?: number | null; prerollS?: number | null }): void {
    if (b.lateStartUs !== undefined) this.q('UPDATE recordings SET late_start_us = ? WHERE id = ?').run(b.lateStartUs, recordingId);
    if (b.prerollS !== undefined) this.q('UPDATE recordings SET preroll_s = ? WHERE id = ?').run(b.prerollS, recordingId);
  }

  setTriggerFrame(recordingId: number, frameIndex: number): void {
    this.q('UPDATE recordings SET trigger_frame_index = ? WHERE id = ? AND trigger_frame_index IS NULL').run(frameIndex, recordingId);
  }

  updateRecordingProgress(id: number, p: { frames: number; dropped: number; bytes: number }): void {
    this.q('UPDATE recordings SET frame_count = ?, dropped = ?, bytes = ? WHERE id = ?').run(p.frames, p.dropped, p.bytes, id);
  }

  /** Close a recording's row, durably unless `durable` is false (as createRecording: the caller owes syncCommitted()). */
  finishRecording(id: number, f: { state: RecordingState; frames: number; dropped: number; bytes: number; reason: string | null }, durable = true): void {
    const st = this.q('UPDATE recordings SET state = ?, frame_count = ?, dropped = ?, bytes = ?, stop_reason = ?, stopped_at = ? WHERE id = ?');
    const run = (): RunResult => st.run(f.state, f.frames, f.dropped, f.bytes, f.reason, nowIso(), id);
    if (durable) this.durably(run);
    else run();
  }

  /**
   * A recording whose frame timing could not be completed at its close, or whose closed row could not be confirmed
   * on disk: (back) in state `recording`, what start-up reconciles, with the reason, so it is rebuilt from its file
   * rather than trusted as complete.
   */
  markForReconcile(id: number, reason: string): void {
    this.q("UPDATE recordings SET state = 'recording', stop_reason = ?, stopped_at = ? WHERE id = ?").run(reason, nowIso(), id);
  }

  /** Register a verified .mp4; without its .ts the recording's `path` is the .mp4. */
  setMp4(id: number, mp4Path: string, tsKept: boolean): void {
    this.q('UPDATE recordings SET mp4_path = ?, path = CASE WHEN ? THEN path ELSE ? END WHERE id = ?').run(mp4Path, tsKept ? 1 : 0, mp4Path, id);
  }

  /** Mark recordings as copied off the box: only these may ever be deleted by the retention policy. */
  markOffloaded(ids: readonly number[]): number {
    const st = this.q("UPDATE recordings SET offloaded_at = COALESCE(offloaded_at, ?) WHERE id = ? AND state != 'recording'");
    let n = 0;
    this.db.transaction(() => {
      for (const id of ids) n += st.run(nowIso(), id).changes;
    })();
    return n;
  }

  /**
   * Offloaded, finished, not yet deleted recordings, oldest first; with `verifiedOnly`, only those whose copy was
   * checked against the stored checksums (a mark by hand is not enough).
   */
  offloadedOldestFirst(limit: number, verifiedOnly = false): RecordingRow[] {
    return this
      .q(`SELECT * FROM recordings WHERE offloaded_at IS NOT NULL AND deleted_at IS NULL AND state != 'recording'
          AND (? = 0 OR offload_verified_at IS NOT NULL) ORDER BY id LIMIT ?`)
      .all(verifiedOnly ? 1 : 0, limit) as RecordingRow[];
  }

  /**
   * Mark one recording offloaded because its copy's checksums matched, once finished and still on the box; on disk
   * when the promise resolves (the WAL's fsync on the threadpool: a client confirming hundreds of recordings must not
   * stall the event loop, and with it the cameras, once per recording).
   */
  async markOffloadVerified(id: number): Promise<boolean> {
    const now = nowIso();
    const st = this.q(
      "UPDATE recordings SET offloaded_at = COALESCE(offloaded_at, ?), offload_verified_at = ? WHERE id = ? AND state != 'recording' AND deleted_at IS NULL",
    );
    const marked = st.run(now, now, id).changes === 1;
    if (marked) await this.syncCommitted();
    return marked;
  }

  /** When a copy was last confirmed by checksum (push or pull): the offload's last success, across restarts. */
  lastOffloadVerifiedAt(): string | null {
    return (this.q('SELECT MAX(offload_verified_at) AS t FROM recordings').get() as { t: string | null }).t;
  }

  /** Finished recordings still on the box and not yet offloaded, oldest first: what a pull offload fetches. */
  offloadPending(): RecordingRow[] {
    return this
      .q(`SELECT * FROM recordings r WHERE ${WAITING_FOR_OFFLOAD} ORDER BY id`)
      .all() as RecordingRow[];
  }

  /**
   * The offload's view, its cost independent of how many recordings wait (a box unbacked-up for weeks may hold
   * 100 000; their rows, loaded every minute, were MiBs of garbage, and their finish times spread into Math.min
   * overflowed the stack past ~120 000): how many wait, their bytes (hashed where stored, else what the recorder
   * counted), when the oldest of them finished (ms; null when none, or none readable), the first `limit` of them by
   * id, and the given others (the last verified), each row with `hashed_bytes` (null while none is stored).
   */
  offloadSummary(others: readonly number[] = [], limit = 100): { count: number; bytes: number; oldestFinishedMs: number | null; first: OffloadSizedRow[]; others: OffloadSizedRow[] } {
    const hashed = '(SELECT SUM(c.bytes) FROM checksums c WHERE c.recording_id = r.id)';
    // julianday() reads the ISO 8601 times the store writes; an unreadable one is NULL, which MIN skips.
    const agg = this
      .q(`SELECT COUNT(*) AS count, COALESCE(SUM(COALESCE(${hashed}, r.bytes, 0)), 0) AS bytes, MIN((julianday(COALESCE(r.stopped_at, r.started_at)) - 2440587.5) * 86400000.0) AS oldest FROM recordings r WHERE ${WAITING_FOR_OFFLOAD}`)
      .get() as { count: number; bytes: number; oldest: number | null };
    const sized = `SELECT r.*, ${hashed} AS hashed_bytes FROM recordings r`;
    const first = this.q(`${sized} WHERE ${WAITING_FOR_OFFLOAD} ORDER BY r.id LIMIT ?`).all(limit) as OffloadSizedRow[];
    const rest = others.length ? (this.q(`${sized} WHERE r.id IN (SELECT value FROM json_each(?)) ORDER BY r.id`).all(JSON.stringify(others)) as OffloadSizedRow[]) : [];
    return { count: agg.count, bytes: agg.bytes, oldestFinishedMs: agg.oldest === null ? null : Math.round(agg.oldest), first, others: rest };
  }

  /** Finished recordings still on the box (their files are final, so they can be hashed). */
  finishedOnBox(): RecordingRow[] {
    return this.q(`SELECT * FROM recordings r WHERE ${FINISHED_ON_BOX} ORDER BY id`).all() as RecordingRow[];
  }

  /**
   * finishedOnBox (or, with `waitingForOffload`, offloadPending) `size` at a time, by id: each page is read when the
   * previous one is done with, so a backlog of 100 000 is never held at once.
   */
  *finishedPages(size: number, waitingForOffload = false): Generator<RecordingRow[]> {
    const q = this.q(`SELECT * FROM recordings r WHERE ${waitingForOffload ? WAITING_FOR_OFFLOAD : FINISHED_ON_BOX} AND id > ? ORDER BY id LIMIT ?`);
    for (let after = 0; ; ) {
      const page = q.all(after, size) as RecordingRow[];
      if (!page.length) return;
      yield page;
      after = page.at(-1)!.id;
    }
  }

  // ---- checksums --------------------------------------------------------------------------------------
  checksumsOf(recordingId: number): ChecksumRow[] {
    return this.q('SELECT * FROM checksums WHERE recording_id = ? ORDER BY kind').all(recordingId) as ChecksumRow[];
  }

  /** The checksums of many recordings in one query, by recording id (a recording without any: absent). */
  checksumsOfMany(ids: readonly number[]): Map<number, ChecksumRow[]> {
    const out = new Map<number, ChecksumRow[]>();
    if (!ids.length) return out;
    const rows = this.q('SELECT * FROM checksums WHERE recording_id IN (SELECT value FROM json_each(?)) ORDER BY recording_id, kind').all(JSON.stringify(ids)) as ChecksumRow[];
    for (const r of rows) {
      const list = out.get(r.recording_id);
      if (list) list.push(r);
      else out.set(r.recording_id, [r]);
    }
    return out;
  }

  setChecksum(c: Omit<ChecksumRow, 'computed_at'>): void {
    this
      .q('INSERT OR REPLACE INTO checksums (recording_id, kind, path, bytes, sha256, computed_at) VALUES (?, ?, ?, ?, ?, ?)')
      .run(c.recording_id, c.kind, c.path, c.bytes, c.sha256, nowIso());
  }

  dropChecksum(recordingId: number, kind: ChecksumKind): void {
    this.q('DELETE FROM checksums WHERE recording_id = ? AND kind = ?').run(recordingId, kind);
  }

  markDeleted(id: number): void {
    this.q('UPDATE recordings SET deleted_at = ? WHERE id = ?').run(nowIso(), id);
  }

  // ---- frames ---------------------------------------------------------------------------------------
  /** One transaction per batch: a frame-timing flush costs one fsync of the WAL, not one per frame. */
  insertFrames(rows: readonly FrameRow[]): void {
    if (!rows.length) return;
    const ins = this.q(
      `INSERT OR REPLACE INTO frames (recording_id, frame_index, capture_us, wall_us, interval_us, missing_before, pts, keyframe, bytes, flags)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.db.transaction((batch: readonly FrameRow[]) => {
      for (const r of batch)
        ins.run(r.recordingId, r.index, r.captureUs, r.wallUs, r.intervalUs, r.missingBefore, r.pts, r.keyframe ? 1 : 0, r.bytes, r.flags);
    })(rows);
  }

  frameCount(recordingId: number): number {
    return (this.q('SELECT COUNT(*) AS n FROM frames WHERE recording_id = ?').get(recordingId) as { n: number }).n;
  }

  /** One page of a recording's frames after `afterIndex`, for streaming long recordings without holding them all. */
  framesAfter(recordingId: number, afterIndex: number, limit: number): FrameDbRow[] {
    return this.q('SELECT * FROM frames WHERE recording_id = ? AND frame_index > ? ORDER BY frame_index LIMIT ?').all(recordingId, afterIndex, limit) as FrameDbRow[];
  }

  frames(recordingId: number): FrameDbRow[] {
    return this.q('SELECT * FROM frames WHERE recording_id = ? ORDER BY frame_index').all(recordingId) as FrameDbRow[];
  }

  frame(recordingId: number, frameIndex: number): FrameDbRow | undefined {
    return this.q('SELECT * FROM frames WHERE recording_id = ? AND frame_index = ?').get(recordingId, frameIndex) as FrameDbRow | undefined;
  }

  /** The PTS of a recording's rows in frame order, streamed (a long recording has millions). */
  framePts(recordingId: number): IterableIterator<number> {
    return this.q('SELECT pts FROM frames WHERE recording_id = ? ORDER BY frame_index').pluck().iterate(recordingId) as IterableIterator<number>;
  }

  /**
   * Close a recording found in state `recording` at start-up: drop the rows beyond the file's last frame (frames
   * the file lost from the page cache), recount the drops, mark it interrupted, all in one transaction.
   */
  finishReconciled(id: number, f: { framesInFile: number; bytes: number; reason: string }): void {
    this.transaction(() => {
      this.q('DELETE FROM frames WHERE recording_id = ? AND frame_index > ?').run(id, f.framesInFile);
      const dropped = (this.q('SELECT COALESCE(SUM(missing_before), 0) AS d FROM frames WHERE recording_id = ?').get(id) as { d: number }).d;
      this.finishRecording(id, { state: 'interrupted', frames: f.framesInFile, dropped, bytes: f.bytes, reason: f.reason });
    });
  }

  /** Marker events of a trial in capture-clock order. */
  markersOfTrial(trialId: number): MarkerRow[] {
    return this.q("SELECT id, name, mono_us, source FROM events INDEXED BY events_marker_trial WHERE kind = 'marker' AND trial_id = ? ORDER BY mono_us, id").all(trialId) as MarkerRow[];
  }

  cameraRow(id: string): CameraDbRow | undefined {
    return this.q('SELECT id, name, backend, stable_id, device_path FROM cameras WHERE id = ?').get(id) as CameraDbRow | undefined;
  }

  // ---- events ---------------------------------------------------------------------------------------
  /**
   * Journal retention over one window of event ids (`afterId` < id <= `afterId + window`, oldest first): events older
   * than `beforeWallUs`, or beyond the newest `maxRows`, are deleted, except the journal of data still on the box and
   * not known to be copied off it: an event of a trial or session with a recording not offloaded is kept, and a
   * marker as long as its trial has a recording not deleted. Bounded work per call (the event loop stays free between
   * windows). `more` is false once a window holds nothing old enough (events are appended in time order).
   */
  pruneJournal(o: { beforeWallUs: number; maxRows: number; afterId: number; window: number }): { deleted: number; nextAfterId: number; more: boolean } {
    const over = this.q('SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET ?').get(o.maxRows) as { id: number } | undefined;
    // The window starts at the next event that exists (deleted ranges leave gaps in the ids).
    const next = this.q('SELECT MIN(id) id FROM events WHERE id > ?').get(o.afterId) as { id: number | null };
    if (next.id === null) return { deleted: 0, nextAfterId: o.afterId, more: false };
    const p = { before: o.beforeWallUs, overId: over?.id ?? 0, lo: next.id - 1, hi: next.id - 1 + o.window };
    const old = this.q('SELECT COUNT(*) n FROM events WHERE id > @lo AND id <= @hi AND (wall_us < @before OR id <= @overId)').get(p) as { n: number };
    const last = this.q('SELECT MAX(id) id FROM events').get() as { id: number | null };
    const deleted = this.q(
      `DELETE FROM events WHERE id IN (
         SELECT e.id FROM events e
         WHERE e.id > @lo AND e.id <= @hi AND (e.wall_us < @before OR e.id <= @overId)
           AND NOT (e.trial_id IS NOT NULL AND EXISTS (SELECT 1 FROM recordings r WHERE r.trial_id = e.trial_id
                      AND (r.offloaded_at IS NULL OR (e.kind = 'marker' AND r.deleted_at IS NULL))))
           AND NOT (e.session_id IS NOT NULL AND EXISTS (SELECT 1 FROM trials t JOIN recordings r ON r.trial_id = t.id
                      WHERE t.session_id = e.session_id AND r.offloaded_at IS NULL)))`,
    ).run(p).changes;
    return { deleted, nextAfterId: p.hi, more: old.n > 0 && p.hi < (last.id ?? 0) };
  }

  addEvent(e: EventInput): number {
    const info = this.q(
      `INSERT INTO events (wall_us, mono_us, kind, name, source, camera_id, session_id, trial_id, payload, result)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      e.wallUs ?? Date.now() * 1000,
      e.monoUs,
      e.kind,
      e.name,
      e.source ?? null,
      e.cameraId ?? null,
      e.sessionId ?? null,
      e.trialId ?? null,
      e.payload === undefined ? null : JSON.stringify(e.payload),
      e.result === undefined ? null : JSON.stringify(e.result),
    );
    return Number(info.lastInsertRowid);
  }

  // ---- quality (issue 19): decimated series and summaries --------------------------------------------
  /**
   * Frame timing of one recording decimated to `buckets` runs of consecutive frames over the frame index range
   * [lo, hi] (capture time grows with the index, so each bucket is a span of capture time): per bucket the min and
   * max interval and the sum of missing frames, so one dropped frame is never averaged away. One statement reads
   * each row once through the primary key, bucket after bucket: no sort, no extra index (a GROUP BY over a
   * computed bucket sorts every row, and costs about twice as much). Pause and restart gaps are in these intervals;
   * callers take them out of the few buckets that hold one (`gapFrames`, `intervalRange`). Empty buckets are left out.
   */
  frameSeries(recordingId: number, lo: number, hi: number, buckets: number): SeriesBucket[] {
    const rows = this.q(
        `WITH RECURSIVE k(b) AS (SELECT 0 UNION ALL SELECT b + 1 FROM k WHERE b + 1 < @n),
           -- bound parameters are REAL: the edges are truncated to integers explicitly
           r AS (SELECT b, CAST(@lo + CAST(b * (@hi - @lo + 1) / @n AS INTEGER) AS INTEGER) AS i_min,
                   CAST(@lo + CAST((b + 1) * (@hi - @lo + 1) / @n AS INTEGER) - 1 AS INTEGER) AS i_max FROM k)
         SELECT b, i_min, i_max,
           (SELECT json_array(MIN(capture_us), MAX(capture_us), COUNT(*), MIN(interval_us), MAX(interval_us), SUM(missing_before), SUM(keyframe))
            FROM frames WHERE recording_id = @id AND frame_index BETWEEN r.i_min AND r.i_max) AS a
         FROM r`,
      )
      .all({ id: recordingId, lo, hi, n: buckets }) as Array<{ b: number; i_min: number; i_max: number; a: string }>;
    const out: SeriesBucket[] = [];
    for (const r of rows) {
      const [tMin, tMax, frames, iMin, iMax, missing, keyframes] = JSON.parse(r.a) as [number, number, number, number | null, number | null, number, number];
      if (frames) out.push({ b: r.b, i_min: r.i_min, i_max: r.i_max, t_min: tMin, t_max: tMax, frames, interval_min: iMin, interval_max: iMax, missing, keyframes });
    }
    return out;
  }

  /** Frame rows, missing frames, frames after a loss and keyframes of a recording, in one pass. */
  frameTotals(recordingId: number): { frames: number; missing: number; drop_frames: number; keyframes: number } {
    return this.q(
        `SELECT COUNT(*) AS frames, COALESCE(SUM(missing_before), 0) AS missing, COALESCE(SUM(missing_before > 0), 0) AS drop_frames,
           COALESCE(SUM(keyframe), 0) AS keyframes FROM frames WHERE recording_id = ?`,
      )
      .get(recordingId) as { frames: number; missing: number; drop_frames: number; keyframes: number };
  }

  /** Min and max frame interval over a frame index range, pause and restart gaps left out. */
  intervalRange(recordingId: number, fromIndex: number, toIndex: number): { min: number | null; max: number | null } {
    return this.q(
        `SELECT MIN(interval_us) AS min, MAX(interval_us) AS max FROM frames WHERE recording_id = ? AND frame_index BETWEEN ? AND ?
           AND instr(flags, 'resume') = 0 AND instr(flags, 'segment') = 0`,
      )
      .get(recordingId, fromIndex, toIndex) as { min: number | null; max: number | null };
  }

  /** First and last frame (by index; capture time grows with it) without a scan. */
  frameExtent(recordingId: number): { first_index: number | null; last_index: number | null; first_us: number | null; last_us: number | null } {
    const end = (dir: 'ASC' | 'DESC'): { frame_index: number; capture_us: number } | undefined =>
      this.q(`SELECT frame_index, capture_us FROM frames WHERE recording_id = ? ORDER BY frame_index ${dir} LIMIT 1`).get(recordingId) as
        | { frame_index: number; capture_us: number }
        | undefined;
    const a = end('ASC');
    const z = end('DESC');
    return { first_index: a?.frame_index ?? null, last_index: z?.frame_index ?? null, first_us: a?.capture_us ?? null, last_us: z?.capture_us ?? null };
  }

  /**
   * The first frame captured at or after `us` (the frame a marker goes on, as in frames.csv), by binary search over
   * the primary key: capture time grows with the frame index, and no capture-time index is needed.
   */
  frameAtOrAfter(recordingId: number, us: number): { frame_index: number; capture_us: number } | null {
    const at = this.q('SELECT frame_index, capture_us FROM frames WHERE recording_id = ? AND frame_index >= ? ORDER BY frame_index LIMIT 1');
    const ext = this.frameExtent(recordingId);
    if (ext.last_us === null || ext.last_us < us) return null;
    let lo = ext.first_index!;
    let hi = ext.last_index!;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      const f = at.get(recordingId, mid) as { frame_index: number; capture_us: number };
      if (f.capture_us >= us) hi = f.frame_index;
      else lo = f.frame_index + 1;
    }
    return (at.get(recordingId, lo) as { frame_index: number; capture_us: number } | undefined) ?? null;
  }

  /** Frame intervals and how often each occurs (pause and restart gaps left out): exact percentiles in one sort. */
  intervalHistogram(recordingId: number): Array<{ v: number; n: number }> {
    return this.q(
        `SELECT interval_us AS v, COUNT(*) AS n FROM frames WHERE recording_id = ? AND interval_us IS NOT NULL
           AND (flags = '' OR (instr(flags, 'resume') = 0 AND instr(flags, 'segment') = 0)) GROUP BY interval_us ORDER BY interval_us`,
      )
      .all(recordingId) as Array<{ v: number; n: number }>;
  }

  /** Frames that lost frames before them, in order, at most `limit`: the exact places of the drops. */
  dropFrames(recordingId: number, fromIndex: number, toIndex: number, limit: number): Array<{ frame_index: number; capture_us: number; interval_us: number | null; missing_before: number }> {
    return this.q(
        `SELECT frame_index, capture_us, interval_us, missing_before FROM frames
         WHERE recording_id = ? AND frame_index BETWEEN ? AND ? AND missing_before > 0 ORDER BY frame_index LIMIT ?`,
      )
      .all(recordingId, fromIndex, toIndex, limit) as ReturnType<Store['dropFrames']>;
  }

  /** Frames after a gap that is not a drop (pause: `resume`, source restart: `segment`) or at a stream `discontinuity`. */
  gapFrames(recordingId: number, limit: number, indexRange: readonly [number, number] = [0, Number.MAX_SAFE_INTEGER]): Array<{ frame_index: number; capture_us: number; interval_us: number | null; flags: string }> {
    return this.q(
        `SELECT frame_index, capture_us, interval_us, flags FROM frames WHERE recording_id = ? AND frame_index BETWEEN ? AND ? AND flags != ''
           AND (instr(flags, 'resume') > 0 OR instr(flags, 'segment') > 0 OR instr(flags, 'discontinuity') > 0)
         ORDER BY frame_index LIMIT ?`,
      )
      .all(recordingId, indexRange[0], indexRange[1], limit) as ReturnType<Store['gapFrames']>;
  }

  /** The stop instant of a trial, from its journalled recording_stopped status (null while recording or unknown). */
  trialStopMonoUs(trialId: number): number | null {
    const r = this.q(
        `SELECT json_extract(payload, '$.stop_mono_us') AS us FROM events
         WHERE kind = 'status' AND name = 'recording_stopped' AND json_extract(payload, '$.trial_id') = ? ORDER BY id DESC LIMIT 1`,
      )
      .get(trialId) as { us: number | null } | undefined;
    return r?.us ?? null;
  }

  // ---- sync pulses (issue 18) ----------------------------------------------------------------------------
  createSyncRun(r: NewSyncRun): SyncRunRow {
    const info = this.durably(() =>
      this.q(
        `INSERT INTO sync_runs (host, boot_id, pid, started_at, mono0_us, wall0_us, pair_uncertainty_us, time_sync, config)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(r.host, r.bootId, r.pid, nowIso(), r.mono0Us, r.wall0Us, r.uncertaintyUs, r.timeSync, JSON.stringify(r.config ?? {})),
    );
    return this.syncRun(Number(info.lastInsertRowid))!;
  }

  syncRun(id: number): SyncRunRow | undefined {
    return this.q('SELECT * FROM sync_runs WHERE id = ?').get(id) as SyncRunRow | undefined;
  }

  syncRuns(): SyncRunRow[] {
    return this.q('SELECT * FROM sync_runs ORDER BY id').all() as SyncRunRow[];
  }

  /** One transaction per batch (a failed batch is kept and retried by the caller, like frame rows). */
  insertSyncEdges(edges: readonly NewSyncEdge[]): void {
    if (!edges.length) return;
    const ins = this.q(
      `INSERT INTO sync_edges (run_id, direction, line, active, mono_us, clock, uncertainty_us, seq, session_id, trial_id)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.transactionNoWait(() => {
      for (const e of edges)
        ins.run(e.runId, e.direction, e.line, e.active ? 1 : 0, Math.round(e.monoUs), e.clock, e.uncertaintyUs, e.seq, e.sessionId, e.trialId);
    });
  }

  /** A page of sync edges after edge id `sinceId` (exclusive), in order, each with its run's host and boot. */
  syncEdgesPage(sinceId: number, limit: number, f: { direction?: 'in' | 'out'; line?: number } = {}): SyncEdgeRow[] {
    return this.q(
      `SELECT e.*, r.host, r.boot_id FROM sync_edges e JOIN sync_runs r ON r.id = e.run_id
       WHERE e.id > @since AND (@direction IS NULL OR e.direction = @direction) AND (@line IS NULL OR e.line = @line)
       ORDER BY e.id LIMIT @limit`,
    ).all({ since: sinceId, limit, direction: f.direction ?? null, line: f.line ?? null }) as SyncEdgeRow[];
  }

  /**
   * The sync edges recorded while a session was open (each edge carries the session open at its time), in order:
   * for a session's export.
   */
  syncEdgesOfSession(sessionId: number): SyncEdgeRow[] {
    return this.q(
      'SELECT e.*, r.host, r.boot_id FROM sync_edges e JOIN sync_runs r ON r.id = e.run_id WHERE e.session_id = ? ORDER BY e.id',
    ).all(sessionId) as SyncEdgeRow[];
  }

  /**
   * Pulse onsets (active edges) of a sync input line in a span (CLOCK_MONOTONIC µs, inclusive), from the GPIO runs
   * that stamped edges during the trial: the same boot as the trial's frames.
   */
  syncPulsesOfTrial(trialId: number, line: number, fromMonoUs: number, toMonoUs: number): number[] {
    const rows = this.q(
      `SELECT e.mono_us FROM sync_edges e
       WHERE e.direction = 'in' AND e.line = ? AND e.active = 1 AND e.mono_us BETWEEN ? AND ?
         AND e.run_id IN (SELECT DISTINCT run_id FROM sync_edges WHERE trial_id = ?)
       ORDER BY e.mono_us`,
    ).all(line, fromMonoUs, toMonoUs, trialId) as Array<{ mono_us: number }>;
    return rows.map((r) => r.mono_us);
  }

  /** Sync edges of one boot in a span of CLOCK_MONOTONIC (µs, inclusive): e.g. a trial's, with margins. */
  syncEdgesInSpan(bootId: string, fromMonoUs: number, toMonoUs: number): SyncEdgeRow[] {
    return this.q(
      `SELECT e.*, r.host, r.boot_id FROM sync_edges e JOIN sync_runs r ON r.id = e.run_id
       WHERE r.boot_id = ? AND e.mono_us BETWEEN ? AND ? ORDER BY e.mono_us, e.id`,
    ).all(bootId, fromMonoUs, toMonoUs) as SyncEdgeRow[];
  }

  /** The pulse trains stored: per boot, direction and line, the pulses (active edges) and their span, newest last. */
  syncTrains(): Array<{ boot_id: string; direction: 'in' | 'out'; line: number; pulses: number; first_mono_us: number; last_mono_us: number }> {
    return this.q(
      `SELECT r.boot_id, e.direction, e.line, COUNT(*) AS pulses, MIN(e.mono_us) AS first_mono_us, MAX(e.mono_us) AS last_mono_us
       FROM sync_edges e JOIN sync_runs r ON r.id = e.run_id WHERE e.active = 1 GROUP BY r.boot_id, e.direction, e.line ORDER BY MAX(e.id)`,
    ).all() as ReturnType<Store['syncTrains']>;
  }

  /** The pulse onsets (active edges, µs) of one train: one boot, direction and line, in time order. */
  syncOnsets(bootId: string, direction: 'in' | 'out', line: number): number[] {
    return this.q(
      `SELECT e.mono_us FROM sync_edges e JOIN sync_runs r ON r.id = e.run_id
       WHERE r.boot_id = ? AND e.direction = ? AND e.line = ? AND e.active = 1 ORDER BY e.mono_us`,
    ).pluck().all(bootId, direction, line) as number[];
  }

  /** Per line of the newest run: edges and pulses (active edges) seen, and the last edge. */
  syncHealth(): SyncLineHealth[] {
    return this.q(
      `SELECT run_id, direction, line, COUNT(*) AS edges, SUM(active) AS pulses, MAX(mono_us) AS last_mono_us FROM sync_edges
       WHERE run_id = (SELECT MAX(id) FROM sync_runs) GROUP BY run_id, direction, line ORDER BY direction, line`,
    ).all() as SyncLineHealth[];
  }

  // ---- verify (rigcam verify) -------------------------------------------------------------------------
  /** The recording whose .ts or .mp4 is this path (relative to the recordings root). */
  recordingByFile(relPath: string): RecordingRow | undefined {
    return this.q('SELECT * FROM recordings WHERE path = ? OR mp4_path = ? ORDER BY id DESC LIMIT 1').get(relPath, relPath) as RecordingRow | undefined;
  }
}
