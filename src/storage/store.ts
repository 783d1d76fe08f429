import type { Statement } from 'better-sqlite3';
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
  deleted_at: string | null;
  started_at: string;
  stopped_at: string | null;
}

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

/** What `rigcam recordings list` shows of a recording. */
export type RecordingListRow = Pick<RecordingRow, 'id' | 'path' | 'state' | 'frame_count' | 'dropped' | 'bytes' | 'offloaded_at' | 'deleted_at' | 'started_at'>;

/**
 * All SQL of rigcam in one place. Each statement is prepared once, on first use, and cached (better-sqlite3
 * statements are reusable); the connection itself is private to src/storage. Paths are stored relative to the
 * recordings root.
 */
export class Store {
  private readonly statements = new Map<string, Statement>();

  constructor(private readonly db: Db) {}

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

  /** The trial's one wall↔monotonic pair, the box's time sync at its start (JSON) and its trigger's clock. */
  setTrialClock(id: number, c: { mono0Us?: number; wall0Us?: number; uncertaintyUs?: number; timeSync?: string; triggerClock?: string }): void {
    this.q(
      `UPDATE trials SET mono0_us = COALESCE(?, mono0_us), wall0_us = COALESCE(?, wall0_us), pair_uncertainty_us = COALESCE(?, pair_uncertainty_us),
         time_sync = COALESCE(?, time_sync), trigger_clock = COALESCE(?, trigger_clock) WHERE id = ?`,
    ).run(c.mono0Us ?? null, c.wall0Us ?? null, c.uncertaintyUs ?? null, c.timeSync ?? null, c.triggerClock ?? null, id);
  }

  setTrialState(id: number, state: TrialState): void {
    const stopped = state === 'complete' || state === 'interrupted' ? nowIso() : null;
    this.q('UPDATE trials SET state = ?, stopped_at = COALESCE(?, stopped_at) WHERE id = ?').run(state, stopped, id);
  }

  // ---- recordings -----------------------------------------------------------------------------------
  createRecording(r: NewRecording): number {
    const info = this
      .q(
        `INSERT INTO recordings (trial_id, camera_id, segment, path, csv_path, codec, encoder, width, height, fps_nominal, clock,
           mono0_us, wall0_us, trigger_source, trigger_mono_us, stop_hold_ms, clock_source, state, started_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'recording', ?)`,
      )
      .run(r.trialId, r.cameraId, r.segment, r.path, r.csvPath, r.codec, r.encoder, r.width, r.height, r.fpsNominal, r.clock,
        r.mono0Us, r.wall0Us, r.triggerSource, r.triggerMonoUs, r.stopHoldMs ?? null, r.clockSource ?? null, nowIso());
    return Number(info.lastInsertRowid);
  }

  recording(id: number): RecordingRow | undefined {
    return this.q('SELECT * FROM recordings WHERE id = ?').get(id) as RecordingRow | undefined;
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

  finishRecording(id: number, f: { state: RecordingState; frames: number; dropped: number; bytes: number; reason: string | null }): void {
    this
      .q('UPDATE recordings SET state = ?, frame_count = ?, dropped = ?, bytes = ?, stop_reason = ?, stopped_at = ? WHERE id = ?')
      .run(f.state, f.frames, f.dropped, f.bytes, f.reason, nowIso(), id);
  }

  setMp4(id: number, mp4Path: string | null, tsKept: boolean, tsPath?: string): void {
    this.q('UPDATE recordings SET mp4_path = ? WHERE id = ?').run(mp4Path, id);
    if (!tsKept && tsPath) this.q('UPDATE recordings SET path = ? WHERE id = ?').run(tsPath, id);
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

  /** Offloaded, finished, not yet deleted recordings, oldest first. */
  offloadedOldestFirst(limit: number): RecordingRow[] {
    return this
      .q("SELECT * FROM recordings WHERE offloaded_at IS NOT NULL AND deleted_at IS NULL AND state != 'recording' ORDER BY id LIMIT ?")
      .all(limit) as RecordingRow[];
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
    return this.q("SELECT id, name, mono_us, source FROM events WHERE kind = 'marker' AND trial_id = ? ORDER BY mono_us, id").all(trialId) as MarkerRow[];
  }

  cameraRow(id: string): CameraDbRow | undefined {
    return this.q('SELECT id, name, backend, stable_id, device_path FROM cameras WHERE id = ?').get(id) as CameraDbRow | undefined;
  }

  // ---- events ---------------------------------------------------------------------------------------
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
}
