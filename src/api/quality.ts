import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { RecordingRow, SeriesBucket, Store, TrialRow } from '../storage/store.ts';
import { fileInRoot } from './file-in-root.ts';
import { hwTriggerSchema } from '../sources/rpicam-controls.ts';
import { checkPulseFrames, checkTrialPulseFrames, type TrialPulseFrameCheck } from '../sync/pulse-frames.ts';

/**
 * Issue 19: what the page plots and summarises for a recording, computed on the box. Times in the answers are
 * seconds from the trial's trigger (pre-roll is negative), or from the first frame when there is no trigger;
 * `origin_us` is that instant on the capture clock, so every `t` maps back to the CSV's `capture_us`.
 */

/** At most this many exact drop and gap places are listed (the buckets still count every drop). */
export const MAX_LISTED = 5000;

const sec = (us: number, origin: number): number => Math.round(us - origin) / 1e6;
const ms = (us: number | null): number | null => (us === null ? null : Math.round(us) / 1000);

type GapKind = 'pause' | 'restart' | 'discontinuity';
function gapKind(flags: string): GapKind {
  const f = flags.split(' ');
  return f.includes('resume') ? 'pause' : f.includes('segment') ? 'restart' : 'discontinuity';
}

interface Timeline {
  origin: number;
  triggerUs: number | null;
  stopUs: number | null;
  extent: ReturnType<Store['frameExtent']>;
}

function timeline(store: Store, rec: RecordingRow): Timeline {
  const trial = rec.trial_id !== null ? store.trial(rec.trial_id) : undefined;
  const triggerUs = rec.trigger_mono_us ?? trial?.trigger_mono_us ?? null;
  const extent = store.frameExtent(rec.id);
  return { origin: triggerUs ?? extent.first_us ?? rec.mono0_us, triggerUs, stopUs: rec.trial_id !== null ? store.trialStopMonoUs(rec.trial_id) : null, extent };
}

/** The recording's segments (one file each: a source restart starts the next) of the same trial and camera. */
function segmentsOf(store: Store, rec: RecordingRow, origin: number): Array<Record<string, unknown>> {
  const rows = rec.trial_id === null ? [rec] : store.recordingsOfTrial(rec.trial_id).filter((r) => r.camera_id === rec.camera_id);
  return rows.map((r) => {
    const ext = store.frameExtent(r.id);
    return {
      recording_id: r.id,
      segment: r.segment,
      state: r.state,
      frames: r.frame_count,
      first_t: ext.first_us === null ? null : sec(ext.first_us, origin),
      last_t: ext.last_us === null ? null : sec(ext.last_us, origin),
      this: r.id === rec.id,
    };
  });
}

function gapsOf(store: Store, rec: RecordingRow, origin: number, range?: readonly [number, number]): Array<Record<string, unknown>> {
  return store.gapFrames(rec.id, MAX_LISTED, range).map((g) => ({
    frame_index: g.frame_index,
    t: sec(g.capture_us, origin),
    capture_us: g.capture_us,
    gap_ms: ms(g.interval_us),
    kind: gapKind(g.flags),
  }));
}

function markersOf(store: Store, rec: RecordingRow, origin: number, bucketOfFrame: (index: number | null) => number | null): Array<Record<string, unknown>> {
  if (rec.trial_id === null) return [];
  return store.markersOfTrial(rec.trial_id).map((m) => {
    const f = store.frameAtOrAfter(rec.id, m.mono_us);
    return { label: m.name, t: sec(m.mono_us, origin), mono_us: m.mono_us, frame_index: f?.frame_index ?? null, bucket: bucketOfFrame(f?.frame_index ?? null), source: m.source };
  });
}

export interface SeriesQuery {
  width: number;
  fromUs?: number;
  toUs?: number;
}

/**
 * The decimated timeline: `width` buckets of consecutive frames over the frames captured in [from, to] (default:
 * the whole recording), columnar for the chart. Per bucket: its first capture time `t` (and last, `t_end`), its
 * first frame index, frames, min/max interval (ms), missing frames and keyframes. The few buckets that contain a pause or restart gap get their intervals without it (a gap is
 * listed in `gaps`, not drawn as a drop). `drops` lists the exact frames after which frames were lost.
 */
export function recordingSeries(store: Store, rec: RecordingRow, q: SeriesQuery): Record<string, unknown> {
  const tl = timeline(store, rec);
  const { first_us, last_us } = tl.extent;
  const from = q.fromUs ?? first_us ?? 0;
  const to = q.toUs ?? last_us ?? 0;
  const n = q.width;
  // A zoomed span reads only its own rows: its frame index range, by binary search over the key.
  const lo = q.fromUs === undefined ? tl.extent.first_index : store.frameAtOrAfter(rec.id, from)?.frame_index ?? null;
  const hi = q.toUs === undefined ? tl.extent.last_index : (store.frameAtOrAfter(rec.id, to + 1)?.frame_index ?? (tl.extent.last_index ?? 0) + 1) - 1;
  const range = lo === null || hi === null || hi < lo ? null : ([lo, hi] as const);
  const rows: SeriesBucket[] = range === null ? [] : store.frameSeries(rec.id, range[0], range[1], n);
  const gaps = range === null ? [] : gapsOf(store, rec, tl.origin, range);
  const gapIdx = gaps.map((g) => g.frame_index as number);
  let gi = 0;
  for (const r of rows) {
    while (gi < gapIdx.length && gapIdx[gi]! < r.i_min) gi++;
    if (gi < gapIdx.length && gapIdx[gi]! <= r.i_max) {
      const clean = store.intervalRange(rec.id, r.i_min, r.i_max);
      r.interval_min = clean.min;
      r.interval_max = clean.max;
    }
  }
  // `bucket` in the answers is the position (in the bucket arrays; empty buckets are left out) of the bucket holding
  // a frame: a drop's frame, or the frame a marker is on (as in frames.csv). Null outside the span.
  const bucketOfFrame = (index: number | null): number | null => {
    if (index === null || !rows.length || index < rows[0]!.i_min || index > rows[rows.length - 1]!.i_max) return null;
    let lo = 0;
    let hi = rows.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (rows[mid]!.i_min <= index) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };
  // The exact drops, read only in the buckets that lost frames.
  const drops: ReturnType<Store['dropFrames']> = [];
  for (const r of rows) {
    if (r.missing > 0 && drops.length <= MAX_LISTED) drops.push(...store.dropFrames(rec.id, r.i_min, r.i_max, MAX_LISTED + 1 - drops.length));
  }
  const prerollTo = tl.triggerUs !== null && first_us !== null && first_us < tl.triggerUs ? Math.min(tl.triggerUs, last_us ?? tl.triggerUs) : null;
  return {
    recording_id: rec.id,
    origin_us: tl.origin,
    origin: tl.triggerUs !== null ? 'trigger' : 'first_frame',
    from_us: from,
    to_us: to,
    width: n,
    fps_nominal: rec.fps_nominal,
    frame_period_ms: rec.fps_nominal > 0 ? Math.round(1e6 / rec.fps_nominal) / 1000 : null,
    buckets: {
      t: rows.map((r) => sec(r.t_min, tl.origin)),
      t_end: rows.map((r) => sec(r.t_max, tl.origin)),
      first_frame: rows.map((r) => r.i_min),
      frames: rows.map((r) => r.frames),
      interval_min_ms: rows.map((r) => ms(r.interval_min)),
      interval_max_ms: rows.map((r) => ms(r.interval_max)),
      missing: rows.map((r) => r.missing),
      keyframes: rows.map((r) => r.keyframes),
    },
    drops: drops.slice(0, MAX_LISTED).map((d) => ({ frame_index: d.frame_index, t: sec(d.capture_us, tl.origin), capture_us: d.capture_us, interval_ms: ms(d.interval_us), missing: d.missing_before, bucket: bucketOfFrame(d.frame_index) })),
    drops_truncated: drops.length > MAX_LISTED,
    gaps,
    trigger: tl.triggerUs === null ? null : { t: sec(tl.triggerUs, tl.origin), mono_us: tl.triggerUs, frame_index: rec.trigger_frame_index },
    stop: tl.stopUs === null ? null : { t: sec(tl.stopUs, tl.origin), mono_us: tl.stopUs },
    preroll: prerollTo === null ? null : { from_t: sec(first_us!, tl.origin), to_t: sec(prerollTo, tl.origin) },
    markers: markersOf(store, rec, tl.origin, bucketOfFrame),
    segments: segmentsOf(store, rec, tl.origin),
  };
}

/** Lines of a text file (its newline bytes), read in chunks: an hour's CSV is never held whole. */
function countLines(file: string): Promise<number> {
  return new Promise((resolve, reject) => {
    let n = 0;
    createReadStream(file, { highWaterMark: 1 << 20 })
      .on('data', (c) => {
        const b = c as Buffer;
        for (let i = b.indexOf(10); i !== -1; i = b.indexOf(10, i + 1)) n++;
      })
      .on('end', () => resolve(n))
      .on('error', reject);
  });
}

function percentile(hist: ReadonlyArray<{ v: number; n: number }>, total: number, p: number): number | null {
  if (!total) return null;
  const rank = Math.min(total - 1, Math.floor(p * total)); // nearest-rank on the sorted intervals, 0-based
  let seen = 0;
  for (const h of hist) {
    seen += h.n;
    if (seen > rank) return h.v;
  }
  return null;
}

interface Check {
  name: string;
  ok: boolean | null;
  detail: string;
}

/**
 * An externally triggered camera (issue 18): the trial's pulses on the trigger's GPIO sync input against the frames
 * of this recording, from the trigger to the stop (pre-roll frames are outside: they have no pulses of the trial).
 * The lag is found over the whole recording first, then each side is cut to the same window on the frame clock.
 */
type HwTriggerCheck = TrialPulseFrameCheck & { pulse_line: number; from_mono_us: number; to_mono_us: number; missing_count: number; extra_count: number };
function hwTriggerOf(store: Store, rec: RecordingRow, tl: Timeline): HwTriggerCheck | null {
  if (!rec.hw_trigger || rec.trial_id === null) return null;
  let parsed;
  try {
    parsed = hwTriggerSchema.safeParse(JSON.parse(rec.hw_trigger));
  } catch {
    return null;
  }
  if (!parsed.success || tl.extent.first_us === null) return null;
  const trig = parsed.data;
  const from = tl.triggerUs ?? tl.extent.first_us;
  const to = tl.stopUs ?? tl.extent.last_us! + 1;
  const frames = store.frames(rec.id).map((f) => ({ frame_index: f.frame_index, capture_us: f.capture_us }));
  const margin = trig.lag_us ?? 1_000_000;
  const allPulses = store.syncPulsesOfTrial(rec.trial_id, trig.pulse_line, Math.min(from, tl.extent.first_us) - margin, to);
  const first = checkPulseFrames(allPulses, frames, { lagUs: trig.lag_us, toleranceUs: trig.tolerance_us });
  const lag = first.lag_us ?? trig.lag_us ?? 0;
  const tol = trig.tolerance_us ?? first.tolerance_us;
  const inWindow = (captureUs: number): boolean => captureUs >= from && captureUs < to;
  // No tolerance (fewer than two pulses, none configured): nothing to match, the window's pulses and frames as they are.
  const r: TrialPulseFrameCheck =
    tol === null
      ? { ...checkPulseFrames(allPulses.filter((p) => inWindow(p + lag)), frames.filter((f) => inWindow(f.capture_us)), { lagUs: lag }), unjudged_at_stop: 0 }
      : checkTrialPulseFrames(allPulses, frames, { fromUs: from, toUs: to, lagUs: lag, toleranceUs: tol });
  return {
    ...r,
    missing_count: r.missing.length,
    extra_count: r.extra.length,
    missing: r.missing.slice(0, MAX_LISTED),
    extra: r.extra.slice(0, MAX_LISTED),
    pulse_line: trig.pulse_line,
    from_mono_us: from,
    to_mono_us: to,
  };
}

/**
 * The summary beside the chart: counts, drops, interval percentiles, effective fps, gaps, segments, and whether
 * the file, the CSV sidecar and the database agree. The video file is checked by its size against the bytes
 * rigcam wrote; its frames are not decoded (ffprobe over an hour of video takes seconds: that is for the CLI).
 */
export async function recordingSummary(store: Store, root: string, rec: RecordingRow): Promise<Record<string, unknown>> {
  const tl = timeline(store, rec);
  const { first_us, last_us, first_index, last_index } = tl.extent;
  const totals = store.frameTotals(rec.id);
  const rows = totals.frames;
  const missing = totals.missing;
  const hist = store.intervalHistogram(rec.id);
  const intervals = hist.reduce((a, h) => a + h.n, 0);
  const gaps = gapsOf(store, rec, tl.origin);
  const pauseUs = gaps.filter((g) => g.kind !== 'discontinuity').reduce((a, g) => a + Math.round(((g.gap_ms as number | null) ?? 0) * 1000), 0);
  const durationUs = first_us === null ? 0 : last_us! - first_us;
  const activeS = (durationUs - pauseUs) / 1e6;

  const checks: Check[] = [];
  const live = rec.state === 'recording';
  checks.push({
    name: 'database rows = recording frame count',
    ok: live ? null : rows === rec.frame_count,
    detail: `${rows} rows, frame_count ${rec.frame_count}${live ? ' (still recording: counts move)' : ''}`,
  });
  checks.push({
    name: 'frame indexes 1..N without holes',
    ok: rows === 0 || (first_index === 1 && last_index === rows),
    detail: rows ? `${first_index}..${last_index} for ${rows} rows` : 'no frames',
  });
  checks.push({ name: 'dropped = sum of missing_before', ok: live ? null : missing === rec.dropped, detail: `${missing} missing in rows, dropped ${rec.dropped}` });
  let csvRows: number | null = null;
  try {
    csvRows = Math.max(0, (await countLines(fileInRoot(root, rec.csv_path))) - 1);
    checks.push({ name: 'CSV sidecar rows = database rows', ok: live ? null : csvRows === rows, detail: `${csvRows} CSV rows, ${rows} database rows` });
  } catch (err) {
    checks.push({ name: 'CSV sidecar rows = database rows', ok: false, detail: `CSV sidecar: ${(err as Error).message}` });
  }
  let fileBytes: number | null = null;
  try {
    fileBytes = (await stat(fileInRoot(root, rec.path))).size;
    const isTs = rec.path.endsWith('.ts');
    checks.push({
      name: 'video file size = bytes written',
      ok: live || !isTs ? null : fileBytes === rec.bytes,
      detail: isTs ? `${fileBytes} bytes on disk, ${rec.bytes} written` : `${fileBytes} bytes (remuxed file: size not comparable)`,
    });
  } catch (err) {
    checks.push({ name: 'video file size = bytes written', ok: rec.deleted_at ? null : false, detail: rec.deleted_at ? 'deleted after offload' : `video: ${(err as Error).message}` });
  }
  const hwTrigger = hwTriggerOf(store, rec, tl);
  if (hwTrigger)
    checks.push({
      name: 'hardware trigger: one frame per pulse',
      ok: live ? null : hwTrigger.ok,
      detail: `${hwTrigger.pulses} pulses on line ${hwTrigger.pulse_line}, ${hwTrigger.frames} frames: ${hwTrigger.missing_count} missing, ${hwTrigger.extra_count} extra (lag ${hwTrigger.lag_us} µs)${hwTrigger.unjudged_at_stop ? `; ${hwTrigger.unjudged_at_stop} pulse due within the tolerance of the stop not judged` : ''}`,
    });
  const failed = checks.filter((c) => c.ok === false);
  const base = `/api/recordings/${rec.id}`;
  return {
    recording_id: rec.id,
    camera_id: rec.camera_id,
    segment: rec.segment,
    state: rec.state,
    stop_reason: rec.stop_reason,
    clock: rec.clock,
    encoder: rec.encoder,
    size: `${rec.width}x${rec.height}`,
    fps_nominal: rec.fps_nominal,
    frames: rows,
    duration_s: Math.round(durationUs) / 1e6,
    dropped: missing,
    frames_after_drops: totals.drop_frames,
    dropped_percent: rows + missing ? Math.round((missing / (rows + missing)) * 1e6) / 1e4 : 0,
    keyframes: totals.keyframes,
    interval_ms: {
      p50: ms(percentile(hist, intervals, 0.5)),
      p99: ms(percentile(hist, intervals, 0.99)),
      max: ms(hist.length ? hist[hist.length - 1]!.v : null),
      min: ms(hist.length ? hist[0]!.v : null),
    },
    effective_fps: activeS > 0 && rows > 1 ? Math.round(((rows - 1) / activeS) * 100) / 100 : null,
    pipeline_latency_ms: null,
    pipeline_latency_note: 'not stored per recording; the live latency is in telemetry (latency_ms)',
    trigger: tl.triggerUs === null ? null : { mono_us: tl.triggerUs, frame_index: rec.trigger_frame_index, source: rec.trigger_source },
    stop_mono_us: tl.stopUs,
    preroll_s: tl.triggerUs !== null && first_us !== null && first_us < tl.triggerUs ? Math.round(tl.triggerUs - first_us) / 1e6 : 0,
    markers: rec.trial_id === null ? 0 : store.markersOfTrial(rec.trial_id).length,
    segments: segmentsOf(store, rec, tl.origin),
    gaps,
    hw_trigger: hwTrigger,
    agreement: {
      ok: live ? null : failed.length === 0,
      checks,
      not_checked: 'the video is not decoded: its frame count is not compared (ffprobe -count_frames over an hour takes seconds)',
      csv_rows: csvRows,
      file_bytes: fileBytes,
    },
    links: { video: `${base}/video`, video_ts: `${base}/video?format=ts`, frames_csv: `${base}/frames.csv`, series: `${base}/series` },
  };
}

/**
 * One row per trial of a session, so a bad trial stands out among a hundred: duration, frames, drops (count and %),
 * marker count, and its recordings. Counts come from the recording rows (kept current while recording), the
 * duration from each recording's first and last frame (two key lookups): no frame is scanned.
 */
/**
 * A page of a session's per-trial quality rows: the trials numbered above `afterTrial`, at most `limit` (the same
 * paging as GET /api/sessions/:id), and the session's trial count. A session of hundreds of trials is never read
 * whole in one request: each row costs two indexed lookups per recording.
 */
export function sessionQualityPage(store: Store, sessionId: number, afterTrial: number, limit: number): { rows: Array<Record<string, unknown>>; total: number; next: number | null } {
  const { trials, total } = store.trialsPage(sessionId, afterTrial, limit);
  const last = trials.at(-1)?.number;
  return { rows: qualityRows(store, trials), total, next: trials.length === limit && last !== undefined ? last : null };
}

function qualityRows(store: Store, trials: readonly TrialRow[]): Array<Record<string, unknown>> {
  return trials.map((t) => {
    const recs = store.recordingsOfTrial(t.id).map((r) => {
      const e = store.frameExtent(r.id);
      return {
        recording_id: r.id,
        camera_id: r.camera_id,
        segment: r.segment,
        state: r.state,
        frames: r.frame_count,
        dropped: r.dropped,
        dropped_percent: r.frame_count + r.dropped ? Math.round((r.dropped / (r.frame_count + r.dropped)) * 1e6) / 1e4 : 0,
        duration_s: e.first_us !== null && e.last_us !== null ? Math.round(e.last_us - e.first_us) / 1e6 : 0,
        first_us: e.first_us,
        last_us: e.last_us,
      };
    });
    const firsts = recs.map((r) => r.first_us).filter((v): v is number => v !== null);
    const lasts = recs.map((r) => r.last_us).filter((v): v is number => v !== null);
    // Totals over the trial's recordings (every camera, every segment).
    const frames = recs.reduce((a, r) => a + r.frames, 0);
    const dropped = recs.reduce((a, r) => a + r.dropped, 0);
    return {
      trial_id: t.id,
      number: t.number,
      label: t.label,
      state: t.state,
      started_at: t.started_at,
      duration_s: firsts.length ? Math.round(Math.max(...lasts) - Math.min(...firsts)) / 1e6 : 0,
      frames,
      dropped,
      dropped_percent: frames + dropped ? Math.round((dropped / (frames + dropped)) * 1e6) / 1e4 : 0,
      markers: store.markersOfTrial(t.id).length,
      recordings: recs.map(({ first_us: _f, last_us: _l, ...r }) => r),
    };
  });
}
