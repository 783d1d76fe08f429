import type { Db } from './database.ts';
import type { FrameRow } from '../recording/frame-row.ts';

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

/** All SQL of rigcam in one place, as prepared statements. Paths are stored relative to the recordings root. */
export class Store {
  private readonly insFrame;
  private readonly insEvent;

  constructor(readonly db: Db) {
    this.insFrame = db.prepare(
      `INSERT OR REPLACE INTO frames (recording_id, frame_index, capture_us, wall_us, interval_us, missing_before, pts, keyframe, bytes, flags)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.insEvent = db.prepare(
      `INSERT INTO events (wall_us, mono_us, kind, name, source, camera_id, session_id, trial_id, payload, result)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
  }

  upsertCamera(c: { id: string; name?: string | null; backend: string; stableId?: string | null; devicePath?: string | null }): void {
    this.db
      .prepare(
        `INSERT INTO cameras (id, name, backend, stable_id, device_path, updated_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT(id) DO UPDATE SET name = excluded.name, backend = excluded.backend, stable_id = excluded.stable_id,
           device_path = excluded.device_path, updated_at = excluded.updated_at`,
      )
      .run(c.id, c.name ?? null, c.backend, c.stableId ?? null, c.devicePath ?? null, nowIso());
  }

  // ---- sessions -------------------------------------------------------------------------------------
  sessionByName(name: string): SessionRow | undefined {
    return this.db.prepare('SELECT * FROM sessions WHERE name = ?').get(name) as SessionRow | undefined;
  }

  session(id: number): SessionRow | undefined {
    return this.db.prepare('SELECT * FROM sessions WHERE id = ?').get(id) as SessionRow | undefined;
  }

  /** The session of that name, created when new (its metadata merged when given). */
  openSession(name: string, metadata: Record<string, unknown> = {}): SessionRow {
    const existing = this.sessionByName(name);
    if (existing) {
      if (Object.keys(metadata).length) {
        const merged = { ...(JSON.parse(existing.metadata) as Record<string, unknown>), ...metadata };
        this.db.prepare('UPDATE sessions SET metadata = ?, stopped_at = NULL WHERE id = ?').run(JSON.stringify(merged), existing.id);
      } else this.db.prepare('UPDATE sessions SET stopped_at = NULL WHERE id = ?').run(existing.id);
      return this.session(existing.id)!;
    }
    const info = this.db
      .prepare('INSERT INTO sessions (name, metadata, started_at) VALUES (?, ?, ?)')
      .run(name, JSON.stringify(metadata), nowIso());
    return this.session(Number(info.lastInsertRowid))!;
  }

  closeSession(id: number): void {
    this.db.prepare('UPDATE sessions SET stopped_at = ? WHERE id = ? AND stopped_at IS NULL').run(nowIso(), id);
  }

  listSessions(): Array<SessionRow & { trials: number }> {
    return this.db
      .prepare('SELECT s.*, (SELECT COUNT(*) FROM trials t WHERE t.session_id = s.id) AS trials FROM sessions s ORDER BY s.id DESC')
      .all() as Array<SessionRow & { trials: number }>;
  }

  // ---- trials ---------------------------------------------------------------------------------------
  nextTrialNumber(sessionId: number): number {
    const r = this.db.prepare('SELECT MAX(number) AS n FROM trials WHERE session_id = ?').get(sessionId) as { n: number | null };
    return (r.n ?? 0) + 1;
  }

  trialExists(sessionId: number, number: number): boolean {
    return Boolean(this.db.prepare('SELECT 1 FROM trials WHERE session_id = ? AND number = ?').get(sessionId, number));
  }

  createTrial(t: { sessionId: number; number: number; label: string; triggerSource: string; triggerMonoUs: number | null; metadata?: Record<string, unknown> }): TrialRow {
    const info = this.db
      .prepare(
        `INSERT INTO trials (session_id, number, label, state, trigger_source, trigger_mono_us, metadata, started_at)
         VALUES (?, ?, ?, 'recording', ?, ?, ?, ?)`,
      )
      .run(t.sessionId, t.number, t.label, t.triggerSource, t.triggerMonoUs, JSON.stringify(t.metadata ?? {}), nowIso());
    return this.trial(Number(info.lastInsertRowid))!;
  }

  trial(id: number): TrialRow | undefined {
    return this.db.prepare('SELECT * FROM trials WHERE id = ?').get(id) as TrialRow | undefined;
  }

  trialsOfSession(sessionId: number): TrialRow[] {
    return this.db.prepare('SELECT * FROM trials WHERE session_id = ? ORDER BY number').all(sessionId) as TrialRow[];
  }

  setTrialState(id: number, state: TrialState): void {
    const stopped = state === 'complete' || state === 'interrupted' ? nowIso() : null;
    this.db.prepare('UPDATE trials SET state = ?, stopped_at = COALESCE(?, stopped_at) WHERE id = ?').run(state, stopped, id);
  }

  // ---- recordings -----------------------------------------------------------------------------------
  createRecording(r: NewRecording): number {
    const info = this.db
      .prepare(
        `INSERT INTO recordings (trial_id, camera_id, segment, path, csv_path, codec, encoder, width, height, fps_nominal, clock,
           mono0_us, wall0_us, trigger_source, trigger_mono_us, state, started_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'recording', ?)`,
      )
      .run(r.trialId, r.cameraId, r.segment, r.path, r.csvPath, r.codec, r.encoder, r.width, r.height, r.fpsNominal, r.clock,
        r.mono0Us, r.wall0Us, r.triggerSource, r.triggerMonoUs, nowIso());
    return Number(info.lastInsertRowid);
  }

  recording(id: number): RecordingRow | undefined {
    return this.db.prepare('SELECT * FROM recordings WHERE id = ?').get(id) as RecordingRow | undefined;
  }

  recordingsOfTrial(trialId: number): RecordingRow[] {
    return this.db.prepare('SELECT * FROM recordings WHERE trial_id = ? ORDER BY camera_id, segment').all(trialId) as RecordingRow[];
  }

  recordingsInState(state: RecordingState): RecordingRow[] {
    return this.db.prepare('SELECT * FROM recordings WHERE state = ? ORDER BY id').all(state) as RecordingRow[];
  }

  setTriggerFrame(recordingId: number, frameIndex: number): void {
    this.db.prepare('UPDATE recordings SET trigger_frame_index = ? WHERE id = ? AND trigger_frame_index IS NULL').run(frameIndex, recordingId);
  }

  updateRecordingProgress(id: number, p: { frames: number; dropped: number; bytes: number }): void {
    this.db.prepare('UPDATE recordings SET frame_count = ?, dropped = ?, bytes = ? WHERE id = ?').run(p.frames, p.dropped, p.bytes, id);
  }

  finishRecording(id: number, f: { state: RecordingState; frames: number; dropped: number; bytes: number; reason: string | null }): void {
    this.db
      .prepare('UPDATE recordings SET state = ?, frame_count = ?, dropped = ?, bytes = ?, stop_reason = ?, stopped_at = ? WHERE id = ?')
      .run(f.state, f.frames, f.dropped, f.bytes, f.reason, nowIso(), id);
  }

  setMp4(id: number, mp4Path: string | null, tsKept: boolean, tsPath?: string): void {
    this.db.prepare('UPDATE recordings SET mp4_path = ? WHERE id = ?').run(mp4Path, id);
    if (!tsKept && tsPath) this.db.prepare('UPDATE recordings SET path = ? WHERE id = ?').run(tsPath, id);
  }

  /** Mark recordings as copied off the box: only these may ever be deleted by the retention policy. */
  markOffloaded(ids: readonly number[]): number {
    const st = this.db.prepare("UPDATE recordings SET offloaded_at = COALESCE(offloaded_at, ?) WHERE id = ? AND state != 'recording'");
    let n = 0;
    this.db.transaction(() => {
      for (const id of ids) n += st.run(nowIso(), id).changes;
    })();
    return n;
  }

  /** Offloaded, finished, not yet deleted recordings, oldest first. */
  offloadedOldestFirst(limit: number): RecordingRow[] {
    return this.db
      .prepare("SELECT * FROM recordings WHERE offloaded_at IS NOT NULL AND deleted_at IS NULL AND state != 'recording' ORDER BY id LIMIT ?")
      .all(limit) as RecordingRow[];
  }

  markDeleted(id: number): void {
    this.db.prepare('UPDATE recordings SET deleted_at = ? WHERE id = ?').run(nowIso(), id);
  }

  // ---- frames ---------------------------------------------------------------------------------------
  /** One transaction per batch: a frame-timing flush costs one fsync of the WAL, not one per frame. */
  insertFrames(rows: readonly FrameRow[]): void {
    if (!rows.length) return;
    this.db.transaction((batch: readonly FrameRow[]) => {
      for (const r of batch)
        this.insFrame.run(r.recordingId, r.index, r.captureUs, r.wallUs, r.intervalUs, r.missingBefore, r.pts, r.keyframe ? 1 : 0, r.bytes, r.flags);
    })(rows);
  }

  frameCount(recordingId: number): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM frames WHERE recording_id = ?').get(recordingId) as { n: number }).n;
  }

  /** One page of a recording's frames after `afterIndex`, for streaming long recordings without holding them all. */
  framesAfter(recordingId: number, afterIndex: number, limit: number): ReturnType<Store['frames']> {
    return this.db
      .prepare('SELECT * FROM frames WHERE recording_id = ? AND frame_index > ? ORDER BY frame_index LIMIT ?')
      .all(recordingId, afterIndex, limit) as ReturnType<Store['frames']>;
  }

  /** Marker events of a trial in capture-clock order. */
  markersOfTrial(trialId: number): Array<{ id: number; name: string; mono_us: number; source: string | null }> {
    return this.db
      .prepare("SELECT id, name, mono_us, source FROM events WHERE kind = 'marker' AND trial_id = ? ORDER BY mono_us, id")
      .all(trialId) as Array<{ id: number; name: string; mono_us: number; source: string | null }>;
  }

  cameraRow(id: string): { id: string; name: string | null; backend: string; stable_id: string | null; device_path: string | null } | undefined {
    return this.db.prepare('SELECT id, name, backend, stable_id, device_path FROM cameras WHERE id = ?').get(id) as ReturnType<Store['cameraRow']>;
  }

  frames(recordingId: number): Array<{ frame_index: number; capture_us: number; wall_us: number; interval_us: number | null; missing_before: number; pts: number; keyframe: number; bytes: number; flags: string }> {
    return this.db.prepare('SELECT * FROM frames WHERE recording_id = ? ORDER BY frame_index').all(recordingId) as ReturnType<Store['frames']>;
  }

  // ---- events ---------------------------------------------------------------------------------------
  addEvent(e: EventInput): number {
    const info = this.insEvent.run(
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

  // ---- verify (rigcam verify) -------------------------------------------------------------------------
  /** The recording whose .ts or .mp4 is this path (relative to the recordings root). */
  recordingByFile(relPath: string): RecordingRow | undefined {
    return this.db.prepare('SELECT * FROM recordings WHERE path = ? OR mp4_path = ? ORDER BY id DESC LIMIT 1').get(relPath, relPath) as RecordingRow | undefined;
  }
}
