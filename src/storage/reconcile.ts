import { createReadStream, existsSync, renameSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../log/logger.ts';
import { PTS_HZ, PTS_WRAP } from '../pipeline/access-unit.ts';
import { TsDemuxer } from '../pipeline/ts-demux.ts';
import { unwrapNear } from '../pipeline/pts-unwrap.ts';
import type { FrameRow } from '../recording/frame-row.ts';
import { CSV_HEADER, csvLine, moduleName } from '../recording/timing-csv.ts';
import type { RecordingRow, Store } from './store.ts';

/** What the file itself says about each of its frames. */
export interface FileFrame {
  ptsRaw: number;
  keyframe: boolean;
  bytes: number;
  discontinuity: boolean;
}

/** Read a TS file back frame by frame with the project's demuxer (streaming: files can be gigabytes). */
export async function readTsFrames(file: string): Promise<FileFrame[]> {
  const frames: FileFrame[] = [];
  const demux = new TsDemuxer({
    onAccessUnit: (au) => frames.push({ ptsRaw: au.ptsRaw, keyframe: au.keyframe, bytes: au.payloadBytes, discontinuity: au.discontinuity }),
  });
  await new Promise<void>((resolve, reject) => {
    createReadStream(file, { highWaterMark: 1 << 20 })
      .on('data', (c) => demux.push(c as Buffer))
      .on('end', () => resolve())
      .on('error', reject);
  });
  demux.end();
  return frames;
}

const US_PER_TICK = 1e6 / PTS_HZ;

/**
 * Rows for the frames of `file` from `fromIndex` on, with capture times from the file's own PTS: continued from
 * the last known row when there is one, else placed on the monotonic clock nearest the recording's start.
 */
export function rebuildRows(rec: RecordingRow, frames: FileFrame[], known: { index: number; pts: number; captureUs: number } | null): FrameRow[] {
  const rows: FrameRow[] = [];
  let refPts: number;
  let refUs: number;
  if (known) {
    refPts = known.pts;
    refUs = known.captureUs;
  } else {
    // Capture clock modulo 2^33 ticks: take the wrap count that puts the first frame nearest mono0.
    const first = frames[0]?.ptsRaw ?? 0;
    const wrapUs = PTS_WRAP * US_PER_TICK;
    const k = Math.round((rec.mono0_us - first * US_PER_TICK) / wrapUs);
    refPts = first;
    refUs = first * US_PER_TICK + k * wrapUs;
  }
  let prevPts = refPts;
  let prevUs: number | null = known ? known.captureUs : null;
  const start = known ? known.index : 0;
  const period = rec.fps_nominal > 0 ? 1e6 / rec.fps_nominal : 0;
  for (let i = start; i < frames.length; i++) {
    const f = frames[i]!;
    const pts = unwrapNear(f.ptsRaw, prevPts);
    const captureUs = Math.round(refUs + (pts - refPts) * US_PER_TICK);
    const intervalUs = prevUs === null ? null : captureUs - prevUs;
    rows.push({
      recordingId: rec.id,
      index: i + 1,
      captureUs,
      wallUs: rec.wall0_us + (captureUs - rec.mono0_us),
      intervalUs,
      missingBefore: intervalUs !== null && period > 0 ? Math.max(0, Math.round(intervalUs / period) - 1) : 0,
      pts: f.ptsRaw,
      keyframe: f.keyframe,
      bytes: f.bytes,
      flags: ['recovered', ...(f.discontinuity ? ['discontinuity'] : [])].join(' '),
    });
    prevPts = pts;
    prevUs = captureUs;
  }
  return rows;
}

/** Rewrite the CSV sidecar from the database (it is derived data; written aside then renamed into place). */
export function rewriteCsv(store: Store, root: string, rec: RecordingRow): void {
  const trial = rec.trial_id !== null ? store.trial(rec.trial_id) : undefined;
  const kind = (store.db.prepare('SELECT backend FROM cameras WHERE id = ?').get(rec.camera_id) as { backend?: string } | undefined)?.backend;
  const ctx = { trial: trial?.number ?? 0, module: moduleName(kind === 'v4l2' || kind === 'rpicam' ? kind : 'test'), deviceId: rec.camera_id, label: trial?.label ?? '' };
  const lines = [CSV_HEADER];
  for (const r of store.frames(rec.id))
    lines.push(
      csvLine(ctx, {
        recordingId: rec.id,
        index: r.frame_index,
        captureUs: r.capture_us,
        wallUs: r.wall_us,
        intervalUs: r.interval_us,
        missingBefore: r.missing_before,
        pts: r.pts,
        keyframe: r.keyframe === 1,
        bytes: r.bytes,
        flags: r.flags,
      }),
    );
  const csv = path.resolve(root, rec.csv_path);
  const tmp = `${csv}.rebuild`;
  writeFileSync(tmp, lines.join('\n') + '\n');
  renameSync(tmp, csv);
}

export interface ReconcileReport {
  recordingId: number;
  path: string;
  framesInFile: number;
  rowsBefore: number;
  rowsRebuilt: number;
  rowsRemoved: number;
}

/**
 * A recording left in state `recording` (rigcam was killed, or the power went): read its file back, make the
 * frame rows match the file exactly (rebuild the missing ones from the file's own timestamps, drop rows of frames
 * the file lost in the page cache), mark it `interrupted` and rewrite its CSV. Nothing is deleted from disk.
 */
export async function reconcileRecording(store: Store, root: string, rec: RecordingRow, log: Logger): Promise<ReconcileReport> {
  const file = path.resolve(root, rec.path);
  const rowsBefore = store.frameCount(rec.id);
  if (!existsSync(file)) {
    store.finishRecording(rec.id, { state: 'interrupted', frames: 0, dropped: 0, bytes: 0, reason: 'file missing at start-up' });
    log.error({ recording: rec.id, path: rec.path }, 'reconcile: file missing');
    return { recordingId: rec.id, path: rec.path, framesInFile: 0, rowsBefore, rowsRebuilt: 0, rowsRemoved: 0 };
  }
  const frames = await readTsFrames(file);
  const existing = store.frames(rec.id);
  // Keep the logged rows as long as they agree with the file (same PTS at the same index).
  let keep = 0;
  while (keep < existing.length && keep < frames.length && existing[keep]!.pts === frames[keep]!.ptsRaw) keep++;
  const last = keep > 0 ? existing[keep - 1]! : null;
  const rebuilt = rebuildRows(rec, frames, last ? { index: keep, pts: last.pts, captureUs: last.capture_us } : null);
  const removed = existing.length - keep;
  store.db.transaction(() => {
    if (removed > 0) store.db.prepare('DELETE FROM frames WHERE recording_id = ? AND frame_index > ?').run(rec.id, keep);
    store.insertFrames(rebuilt);
    const dropped = (store.db.prepare('SELECT COALESCE(SUM(missing_before), 0) d FROM frames WHERE recording_id = ?').get(rec.id) as { d: number }).d;
    store.finishRecording(rec.id, {
      state: 'interrupted',
      frames: frames.length,
      dropped,
      bytes: statSync(file).size,
      reason: 'rigcam stopped during the recording; reconciled from the file at start-up',
    });
  })();
  rewriteCsv(store, root, store.recording(rec.id)!);
  const report = { recordingId: rec.id, path: rec.path, framesInFile: frames.length, rowsBefore, rowsRebuilt: rebuilt.length, rowsRemoved: removed };
  log.warn(report, 'reconciled interrupted recording');
  return report;
}

/** Reconcile every recording still marked `recording`, and close the trials they belonged to. */
export async function reconcileAll(store: Store, root: string, log: Logger): Promise<ReconcileReport[]> {
  const out: ReconcileReport[] = [];
  for (const rec of store.recordingsInState('recording')) out.push(await reconcileRecording(store, root, rec, log));
  store.db.prepare("UPDATE trials SET state = 'interrupted', stopped_at = COALESCE(stopped_at, ?) WHERE state IN ('recording', 'paused')").run(new Date().toISOString());
  return out;
}
