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
    const rows = this.db
      .prepare(
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
    return this.db
      .prepare(
        `SELECT COUNT(*) AS frames, COALESCE(SUM(missing_before), 0) AS missing, COALESCE(SUM(missing_before > 0), 0) AS drop_frames,
           COALESCE(SUM(keyframe), 0) AS keyframes FROM frames WHERE recording_id = ?`,
      )
      .get(recordingId) as { frames: number; missing: number; drop_frames: number; keyframes: number };
  }

  /** Min and max frame interval over a frame index range, pause and restart gaps left out. */
  intervalRange(recordingId: number, fromIndex: number, toIndex: number): { min: number | null; max: number | null } {
    return this.db
      .prepare(
        `SELECT MIN(interval_us) AS min, MAX(interval_us) AS max FROM frames WHERE recording_id = ? AND frame_index BETWEEN ? AND ?
           AND instr(flags, 'resume') = 0 AND instr(flags, 'segment') = 0`,
      )
      .get(recordingId, fromIndex, toIndex) as { min: number | null; max: number | null };
  }

  /** First and last frame (by index; capture time grows with it) without a scan. */
  frameExtent(recordingId: number): { first_index: number | null; last_index: number | null; first_us: number | null; last_us: number | null } {
    const end = (dir: 'ASC' | 'DESC'): { frame_index: number; capture_us: number } | undefined =>
      this.db.prepare(`SELECT frame_index, capture_us FROM frames WHERE recording_id = ? ORDER BY frame_index ${dir} LIMIT 1`).get(recordingId) as
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
    const at = this.db.prepare('SELECT frame_index, capture_us FROM frames WHERE recording_id = ? AND frame_index >= ? ORDER BY frame_index LIMIT 1');
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
    return this.db
      .prepare(
        `SELECT interval_us AS v, COUNT(*) AS n FROM frames WHERE recording_id = ? AND interval_us IS NOT NULL
           AND (flags = '' OR (instr(flags, 'resume') = 0 AND instr(flags, 'segment') = 0)) GROUP BY interval_us ORDER BY interval_us`,
      )
      .all(recordingId) as Array<{ v: number; n: number }>;
  }

  /** Frames that lost frames before them, in order, at most `limit`: the exact places of the drops. */
  dropFrames(recordingId: number, fromIndex: number, toIndex: number, limit: number): Array<{ frame_index: number; capture_us: number; interval_us: number | null; missing_before: number }> {
    return this.db
      .prepare(
        `SELECT frame_index, capture_us, interval_us, missing_before FROM frames
         WHERE recording_id = ? AND frame_index BETWEEN ? AND ? AND missing_before > 0 ORDER BY frame_index LIMIT ?`,
      )
      .all(recordingId, fromIndex, toIndex, limit) as ReturnType<Store['dropFrames']>;
  }

  /** Frames after a gap that is not a drop (pause: `resume`, source restart: `segment`) or at a stream `discontinuity`. */
  gapFrames(recordingId: number, limit: number, indexRange: readonly [number, number] = [0, Number.MAX_SAFE_INTEGER]): Array<{ frame_index: number; capture_us: number; interval_us: number | null; flags: string }> {
    return this.db
      .prepare(
        `SELECT frame_index, capture_us, interval_us, flags FROM frames WHERE recording_id = ? AND frame_index BETWEEN ? AND ? AND flags != ''
           AND (instr(flags, 'resume') > 0 OR instr(flags, 'segment') > 0 OR instr(flags, 'discontinuity') > 0)
         ORDER BY frame_index LIMIT ?`,
      )
      .all(recordingId, indexRange[0], indexRange[1], limit) as ReturnType<Store['gapFrames']>;
  }

  /** The stop instant of a trial, from its journalled recording_stopped status (null while recording or unknown). */
  trialStopMonoUs(trialId: number): number | null {
    const r = this.db
      .prepare(
        `SELECT json_extract(payload, '$.stop_mono_us') AS us FROM events
         WHERE kind = 'status' AND name = 'recording_stopped' AND json_extract(payload, '$.trial_id') = ? ORDER BY id DESC LIMIT 1`,
      )
      .get(trialId) as { us: number | null } | undefined;
    return r?.us ?? null;
  }
}
