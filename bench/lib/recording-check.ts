import path from 'node:path';
import { PTS_HZ, PTS_WRAP } from '../../src/pipeline/access-unit.ts';
import { readTsFrames } from '../../src/storage/reconcile.ts';
import type { Store } from '../../src/storage/store.ts';

/** What one recording holds, compared with its rows and with the live stream it was cut from. */
export interface RecordingCheck {
  recordingId: number;
  file: string;
  fileFrames: number;
  rows: number;
  /** Same count, same PTS at every index, indexes 1..n. */
  rowsMatchFile: boolean;
  /** Frames whose PTS occurs more than once in the same file. */
  duplicated: number;
  /** Live frames between the file's first and last frame that the file lacks. */
  lostWithin: number;
  /** File frames whose PTS the live stream never showed (should be 0: it would mean the tap missed them). */
  unknown: number;
  /**
   * Frames of the source's PTS sequence between the file's first and last frame that the file lacks. The test
   * source stamps frame N at start + N periods, so this counts losses anywhere after ffmpeg, rigcam's demuxer
   * included (which the live-stream comparison, being downstream of that demuxer, cannot see).
   */
  ptsMissing: number;
  /** rigcam's own gap count: SUM(missing_before) of the rows. */
  missingBefore: number;
  /** Live indexes of the file's frames, in file order (-1 for unknown ones). */
  liveIndexes: number[];
  state: string;
}

export async function checkRecording(store: Store, root: string, recordingId: number, liveIndex: Map<number, number>): Promise<RecordingCheck> {
  const rec = store.recording(recordingId);
  if (!rec) throw new Error(`no recording ${recordingId}`);
  const file = path.resolve(root, rec.path);
  const frames = await readTsFrames(file);
  const rows = store.frames(recordingId);
  const rowsMatchFile = rows.length === frames.length && rows.every((r, i) => r.pts === frames[i]!.ptsRaw && r.frame_index === i + 1);
  const seen = new Set<number>();
  let duplicated = 0;
  let unknown = 0;
  const liveIndexes: number[] = [];
  for (const f of frames) {
    if (seen.has(f.ptsRaw)) duplicated += 1;
    seen.add(f.ptsRaw);
    const i = liveIndex.get(f.ptsRaw);
    if (i === undefined) unknown += 1;
    liveIndexes.push(i ?? -1);
  }
  let lostWithin = 0;
  const known = liveIndexes.filter((i) => i >= 0);
  for (let k = 1; k < known.length; k++) lostWithin += Math.max(0, known[k]! - known[k - 1]! - 1);
  const missingBefore = rows.reduce((s, r) => s + r.missing_before, 0);
  let ptsMissing = 0;
  if (frames.length > 1 && rec.fps_nominal > 0) {
    const period = PTS_HZ / rec.fps_nominal;
    let span = frames[frames.length - 1]!.ptsRaw - frames[0]!.ptsRaw;
    if (span < 0) span += PTS_WRAP;
    ptsMissing = Math.round(span / period) + 1 - seen.size;
  }
  return { recordingId, file, fileFrames: frames.length, rows: rows.length, rowsMatchFile, duplicated, lostWithin, unknown, ptsMissing, missingBefore, liveIndexes, state: rec.state };
}
