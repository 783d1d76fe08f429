import { closeSync, createReadStream, existsSync, fsyncSync, openSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../log/logger.ts';
import { PTS_HZ, PTS_WRAP } from '../pipeline/access-unit.ts';
import { timingOfFrame } from '../pipeline/file-frames.ts';
import { parseTimingCsv, type CsvFrameRow } from '../timing/csv-format.ts';
import { TsDemuxer } from '../pipeline/ts-demux.ts';
import { unwrapNear } from '../pipeline/pts-unwrap.ts';
import type { FrameRow } from '../timing/frame-row.ts';
import { CSV_HEADER, csvLine, moduleName } from '../timing/csv-format.ts';
import type { ParsedSeiTiming } from '../timing/sei.ts';
const TS_PACKET_SIZE = 188;
import { toFrameRow, type RecordingRow, type Store } from './store.ts';

/** What the file itself says about each of its frames. */
export interface FileFrame {
  ptsRaw: number;
  keyframe: boolean;
  bytes: number;
  discontinuity: boolean;
  /** The timing the frame carries in its SEI (exact capture and wall time), when it has one. */
  sei?: ParsedSeiTiming | null;
}

/** Stream a TS file through the project's demuxer, one frame at a time (files can be gigabytes). */
export async function forEachTsFrame(file: string, onFrame: (f: FileFrame) => void): Promise<void> {
  const demux = new TsDemuxer({
    onAccessUnit: (au) => {
      const { sei, bytes } = timingOfFrame(au);
      onFrame({ ptsRaw: au.ptsRaw, keyframe: au.keyframe, bytes, discontinuity: au.discontinuity, sei });
    },
  });
  await new Promise<void>((resolve, reject) => {
    createReadStream(file, { highWaterMark: 1 << 20 })
      .on('data', (c) => demux.push(c as Buffer))
      .on('end', () => resolve())
      .on('error', reject);
  });
  demux.end();
}

/** All frames of a TS file, in order. */
export async function readTsFrames(file: string): Promise<FileFrame[]> {
  const frames: FileFrame[] = [];
  await forEachTsFrame(file, (f) => frames.push(f));
  return frames;
}

/**
 * A file cut inside a TS packet (a power cut mid-write: the writer only ever writes whole packets) ends inside its
 * last frame: that frame is torn, and is not counted as a frame.
 */
export function tsTailTorn(file: string): boolean {
  return statSync(file).size % TS_PACKET_SIZE !== 0;
}

/** A TS file's frames, and whether its last one is torn (then still listed: callers leave it out). */
export async function readTsFile(file: string): Promise<{ frames: FileFrame[]; torn: boolean }> {
  const torn = tsTailTorn(file);
  return { frames: await readTsFrames(file), torn };
}

const US_PER_TICK = 1e6 / PTS_HZ;

/**
 * Makes the rows of a file's frames, one at a time, with capture times from the file's own PTS: continued from
 * the last known row when there is one, else placed on the monotonic clock nearest the recording's start.
 */
export class RowRebuilder {
  private refPts: number | null = null;
  private refUs = 0;
  private prevPts = 0;
  private prevUs: number | null;
  private index: number;
  private readonly period: number;

  constructor(
    private readonly rec: RecordingRow,
    known: { index: number; pts: number; captureUs: number } | null,
  ) {
    if (known) {
      this.refPts = known.pts;
      this.refUs = known.captureUs;
      this.prevPts = known.pts;
    }
    this.prevUs = known ? known.captureUs : null;
    this.index = known ? known.index : 0;
    this.period = rec.fps_nominal > 0 ? 1e6 / rec.fps_nominal : 0;
  }

  next(f: FileFrame): FrameRow {
    if (this.refPts === null) {
      // Capture clock modulo 2^33 ticks: take the wrap count that puts the first frame nearest mono0.
      const wrapUs = PTS_WRAP * US_PER_TICK;
      const k = Math.round((this.rec.mono0_us - f.ptsRaw * US_PER_TICK) / wrapUs);
      this.refPts = this.prevPts = f.ptsRaw;
      this.refUs = f.ptsRaw * US_PER_TICK + k * wrapUs;
    }
    const pts = unwrapNear(f.ptsRaw, this.prevPts);
    // The frame's own SEI is exact; without one, time follows the PTS from the last known frame.
    const captureUs = f.sei ? f.sei.captureUs : Math.round(this.refUs + (pts - this.refPts) * US_PER_TICK);
    if (f.sei) {
      this.refPts = pts;
      this.refUs = captureUs;
    }
    const intervalUs = this.prevUs === null ? null : captureUs - this.prevUs;
    this.index += 1;
    this.prevPts = pts;
    this.prevUs = captureUs;
    return {
      recordingId: this.rec.id,
      index: this.index,
      captureUs,
      wallUs: f.sei ? f.sei.wallUs : this.rec.wall0_us + (captureUs - this.rec.mono0_us),
      intervalUs,
      missingBefore: intervalUs !== null && this.period > 0 ? Math.max(0, Math.round(intervalUs / this.period) - 1) : 0,
      pts: f.ptsRaw,
      keyframe: f.keyframe,
      bytes: f.bytes,
      flags: ['recovered', ...(f.discontinuity ? ['discontinuity'] : [])].join(' '),
    };
  }
}

/** Rows for the frames of a file from index `known.index` on (all of them without `known`). */
export function rebuildRows(rec: RecordingRow, frames: FileFrame[], known: { index: number; pts: number; captureUs: number } | null): FrameRow[] {
  const r = new RowRebuilder(rec, known);
  return frames.slice(known ? known.index : 0).map((f) => r.next(f));
}

/**
 * Rewrite the CSV sidecar from the database (it is derived data; written aside then renamed into place). Rows are
 * streamed from SQLite in pages, so a recording of many hours needs no more memory than a short one.
 */
export function rewriteCsv(store: Store, root: string, rec: RecordingRow): void {
  const trial = rec.trial_id !== null ? store.trial(rec.trial_id) : undefined;
  const kind = store.cameraRow(rec.camera_id)?.backend;
  const ctx = { trial: trial?.number ?? 0, module: moduleName(kind === 'v4l2' || kind === 'rpicam' ? kind : 'test'), deviceId: rec.camera_id, label: trial?.label ?? '' };
  const csv = path.resolve(root, rec.csv_path);
  // Never written through a symlink: the folder must really be inside the root, and the temporary name is created
  // exclusively (a leftover of a crash, or anything planted there, is unlinked first: unlink never follows a link).
  const realDir = realpathSync(path.dirname(csv));
  const fromRoot = path.relative(realpathSync(root), realDir);
  if (fromRoot.startsWith('..') || path.isAbsolute(fromRoot)) throw new Error(`${rec.csv_path}: its folder leads outside the recordings root; CSV not rewritten`);
  const tmp = `${csv}.rebuild`;
  rmSync(tmp, { force: true });
  const fd = openSync(tmp, 'wx', 0o644);
  try {
    writeSync(fd, CSV_HEADER + '\n');
    let after = 0;
    for (;;) {
      const rows = store.framesAfter(rec.id, after, 5000);
      if (!rows.length) break;
      const text = rows.map((r) => csvLine(ctx, toFrameRow(rec.id, r))).join('\n');
      writeSync(fd, text + '\n');
      after = rows[rows.length - 1]!.frame_index;
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, csv);
}

export interface ReconcileReport {
  recordingId: number;
  path: string;
  framesInFile: number;
  rowsBefore: number;
  rowsRebuilt: number;
  rowsRemoved: number;
  /** Of the rows rebuilt, those taken from the CSV as written (flags kept). */
  rowsFromCsv?: number;
  /** The file ended inside its last frame: that frame is not counted. */
  tornLastFrame?: boolean;
}

/**
 * A recording left in state `recording` (rigcam was killed, or the power went): read its file back, make the
 * frame rows match the file exactly (rebuild the missing ones from the file's own timestamps, drop rows of frames
 * the file lost in the page cache), mark it `interrupted` and rewrite its CSV. Nothing is deleted from disk. The
 * file is streamed and rows are written in batches: memory does not grow with the length of the recording.
 */
export async function reconcileRecording(store: Store, root: string, rec: RecordingRow, log: Logger): Promise<ReconcileReport> {
  const file = path.resolve(root, rec.path);
  const rowsBefore = store.frameCount(rec.id);
  if (!existsSync(file)) {
    store.finishRecording(rec.id, { state: 'interrupted', frames: 0, dropped: 0, bytes: 0, reason: 'file missing at start-up' });
    log.error({ recording: rec.id, path: rec.path }, 'reconcile: file missing');
    return { recordingId: rec.id, path: rec.path, framesInFile: 0, rowsBefore, rowsRebuilt: 0, rowsRemoved: 0 };
  }
  // The logged rows' PTS, compactly: kept as long as they agree with the file (same PTS at the same index).
  const knownPts = new Float64Array(rowsBefore);
  let n = 0;
  for (const pts of store.framePts(rec.id))
    if (n < knownPts.length) knownPts[n++] = pts;
  // Rows the database lost but the CSV has (it is appended after each insert): taken as written, flags included
  // (paused, resume, segment), as long as they agree with the file.
  const csvFile = path.resolve(root, rec.csv_path);
  let csvRows: CsvFrameRow[] = [];
  try {
    csvRows = existsSync(csvFile) ? parseTimingCsv(readFileSync(csvFile, 'utf8')) : [];
  } catch {
    csvRows = [];
  }
  const torn = tsTailTorn(file);
  let frames = 0;
  let keep = 0;
  let fromCsv = 0;
  let rebuilder: RowRebuilder | null = null;
  let batch: FrameRow[] = [];
  let rebuilt = 0;
  let last: { index: number; pts: number; captureUs: number } | null = null;
  const flush = (): void => {
    if (!batch.length) return;
    store.insertFrames(batch);
    rebuilt += batch.length;
    batch = [];
  };
  const take = (f: FileFrame): void => {
    frames += 1;
    if (!rebuilder && keep < n && knownPts[keep] === f.ptsRaw && keep === frames - 1) {
      keep += 1;
      return;
    }
    const c = csvRows[frames - 1];
    if (!rebuilder && c && c.index === frames && c.pts === f.ptsRaw) {
      const { label: _label, ...row } = c;
      batch.push({ recordingId: rec.id, ...row });
      last = { index: c.index, pts: c.pts, captureUs: c.captureUs };
      fromCsv += 1;
    } else {
      if (!rebuilder) {
        if (!last && keep > 0) {
          const r = store.frame(rec.id, keep);
          if (r) last = { index: keep, pts: r.pts, captureUs: r.capture_us };
        }
        rebuilder = new RowRebuilder(rec, last);
      }
      batch.push(rebuilder.next(f));
    }
    if (batch.length >= 5000) flush();
  };
  // One frame behind: the last one is taken only once it is known not to be torn.
  let held: FileFrame | null = null;
  await forEachTsFrame(file, (f) => {
    if (held) take(held);
    held = f;
  });
  if (held && !torn) take(held);
  flush();
  const removed = rowsBefore - keep;
  store.finishReconciled(rec.id, {
    framesInFile: frames,
    bytes: statSync(file).size,
    reason: 'rigcam stopped during the recording; reconciled from the file at start-up',
  });
  rewriteCsv(store, root, store.recording(rec.id)!);
  const report = { recordingId: rec.id, path: rec.path, framesInFile: frames, rowsBefore, rowsRebuilt: rebuilt, rowsFromCsv: fromCsv, rowsRemoved: removed, tornLastFrame: torn };
  log.warn(report, 'reconciled interrupted recording');
  return report;
}

/** Reconcile every recording still marked `recording`, and close the trials they belonged to. */
export async function reconcileAll(store: Store, root: string, log: Logger): Promise<ReconcileReport[]> {
  const out: ReconcileReport[] = [];
  for (const rec of store.recordingsInState('recording')) out.push(await reconcileRecording(store, root, rec, log));
  store.interruptOpenTrials();
  return out;
}
