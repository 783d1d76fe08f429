import { closeSync, existsSync, openSync, readSync } from 'node:fs';
import { forEachFileFrame } from '../pipeline/file-frames.ts';
import type { RecordingRow, Store } from '../storage/store.ts';
import { splitCsvLine } from '../timing/csv-format.ts';

/**
 * `rigcam verify`: a recording's video file, the timing SEI inside it, its CSV and its database rows must tell
 * the same story frame by frame. Everything is streamed in lockstep (file frames, CSV lines, database pages), so
 * memory does not grow with the recording.
 */

export interface VerifyTarget {
  /** The video files to check: an .ts is checked fully; an .mp4 for its frames, keyframes and SEI (its PTS are the muxer's). */
  videos: string[];
  csvFile: string | null;
  recording: RecordingRow | null;
  store: Store | null;
}

export interface VerifyReport {
  ok: boolean;
  /** Frames in the (first) video file. */
  frames: number;
  /** Every disagreement, one line each (the first MAX_LINES; `total` counts them all). */
  problems: string[];
  total: number;
}

const MAX_LINES = 200;

/** A reference row: what the CSV or the database says about one frame. */
interface RefRow {
  index: number;
  captureUs: number;
  wallUs: number;
  pts: number;
  keyframe: boolean;
  bytes: number;
  /** CSV only: record_time_mono in µs, which must equal capture_us. */
  monoUs?: number;
}

class Problems {
  readonly lines: string[] = [];
  total = 0;
  add(line: string): void {
    this.total += 1;
    if (this.lines.length < MAX_LINES) this.lines.push(line);
  }
}

// ---------------------------------------------------------------------------------------------- CSV

/** Decimal seconds (`1764412345.123456`) to integer µs, exactly (no binary floating point on the fraction). */
export function secondsToUs(s: string): number {
  const m = /^(-?)(\d+)(?:\.(\d*))?$/.exec(s);
  if (!m) return Number.NaN;
  const us = Number(m[2]) * 1e6 + Number((m[3] ?? '').padEnd(6, '0').slice(0, 6));
  return m[1] ? -us : us;
}

/** Reads a file line by line synchronously, a chunk at a time. */
class LineReader {
  private fd: number | null;
  private buf = '';
  private eof = false;
  private readonly chunk = Buffer.allocUnsafe(1 << 16);

  constructor(file: string) {
    this.fd = openSync(file, 'r');
  }

  next(): string | null {
    for (;;) {
      const nl = this.buf.indexOf('\n');
      if (nl >= 0) {
        const line = this.buf.slice(0, nl).replace(/\r$/, '');
        this.buf = this.buf.slice(nl + 1);
        return line;
      }
      if (this.eof || this.fd === null) {
        if (!this.buf) return null;
        const line = this.buf;
        this.buf = '';
        return line;
      }
      const n = readSync(this.fd, this.chunk, 0, this.chunk.length, null);
      if (n === 0) this.eof = true;
      else this.buf += this.chunk.toString('utf8', 0, n);
    }
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

/** The timing CSV's rows, by column name (so added columns do not matter); `pts_90k` is the PTS when present. */
class CsvRows {
  private readonly lines: LineReader;
  private readonly col: Record<string, number> = {};
  private lineNo = 1;

  constructor(
    file: string,
    private readonly problems: Problems,
  ) {
    this.lines = new LineReader(file);
    const header = this.lines.next() ?? '';
    splitCsvLine(header).forEach((name, i) => (this.col[name] = i));
    for (const need of ['frame_index', 'capture_us', 'record_time_unix', 'keyframe', 'bytes'])
      if (this.col[need] === undefined) problems.add(`CSV: no column ${need}`);
  }

  next(): RefRow | null {
    for (;;) {
      const line = this.lines.next();
      if (line === null) return null;
      this.lineNo += 1;
      if (line === '') continue;
      let f: string[];
      try {
        f = splitCsvLine(line);
      } catch (err) {
        this.problems.add(`CSV line ${this.lineNo}: ${(err as Error).message}`);
        continue;
      }
      const get = (name: string): string => f[this.col[name] ?? -1] ?? '';
      const num = (name: string): number => (get(name) === '' ? Number.NaN : Number(get(name)));
      const row: RefRow = {
        index: num('frame_index'),
        captureUs: num('capture_us'),
        wallUs: secondsToUs(get('record_time_unix')),
        pts: this.col.pts_90k !== undefined ? num('pts_90k') : num('video_pts'),
        keyframe: get('keyframe') === '1',
        bytes: num('bytes'),
        monoUs: this.col.record_time_mono !== undefined ? secondsToUs(get('record_time_mono')) : undefined,
      };
      if (!Number.isInteger(row.index)) {
        this.problems.add(`CSV line ${this.lineNo}: frame_index "${get('frame_index')}" is not a number`);
        continue;
      }
      return row;
    }
  }

  close(): void {
    this.lines.close();
  }
}

/** The database's frame rows of one recording, a page at a time. */
class DbRows {
  private page: RefRow[] = [];
  private at = 0;
  private after = 0;

  constructor(
    private readonly store: Store,
    private readonly recordingId: number,
  ) {}

  next(): RefRow | null {
    if (this.at >= this.page.length) {
      this.page = this.store.framesAfter(this.recordingId, this.after, 2000).map((r) => ({
        index: r.frame_index,
        captureUs: r.capture_us,
        wallUs: r.wall_us,
        pts: r.pts,
        keyframe: r.keyframe === 1,
        bytes: r.bytes,
      }));
      this.at = 0;
      if (!this.page.length) return null;
      this.after = this.page[this.page.length - 1]!.index;
    }
    return this.page[this.at++]!;
  }
}

/** Rows of one source, matched to file positions by their frame index (a missing or extra row is named, not shifted). */
class Aligned {
  private pending: RefRow | null;
  constructor(
    private readonly name: string,
    private readonly source: { next(): RefRow | null },
    private readonly problems: Problems,
  ) {
    this.pending = source.next();
  }

  /** The row of frame `index`, or null (reported) when the source has none. */
  take(index: number): RefRow | null {
    while (this.pending && this.pending.index < index) {
      this.problems.add(`frame ${this.pending.index}: ${this.name} row out of order or duplicated`);
      this.pending = this.source.next();
    }
    if (this.pending && this.pending.index === index) {
      const r = this.pending;
      this.pending = this.source.next();
      return r;
    }
    this.problems.add(`frame ${index}: in the file, no row in the ${this.name}`);
    return null;
  }

  /** Rows left after the file's last frame: frames the file does not have. */
  rest(): number[] {
    const left: number[] = [];
    while (this.pending) {
      left.push(this.pending.index);
      this.pending = this.source.next();
    }
    return left;
  }
}

function ranges(ns: number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < ns.length; ) {
    let j = i;
    while (j + 1 < ns.length && ns[j + 1] === ns[j]! + 1) j++;
    parts.push(i === j ? `${ns[i]}` : `${ns[i]}–${ns[j]}`);
    i = j + 1;
  }
  return parts.join(', ');
}

// ---------------------------------------------------------------------------------------------- checks

type Field = 'captureUs' | 'wallUs' | 'pts' | 'keyframe' | 'bytes';
const FIELD_NAME: Record<Field, string> = { captureUs: 'capture_us', wallUs: 'wall_us', pts: 'pts', keyframe: 'keyframe', bytes: 'bytes' };

function compare(problems: Problems, index: number, field: Field, values: Array<[string, number | boolean | undefined]>, note = ''): void {
  const present = values.filter((v): v is [string, number | boolean] => v[1] !== undefined);
  if (present.length < 2 || present.every((v) => v[1] === present[0]![1])) return;
  const show = (v: number | boolean): string => (typeof v === 'boolean' ? (v ? '1' : '0') : Number.isNaN(v) ? '(empty)' : String(v));
  problems.add(`frame ${index}: ${FIELD_NAME[field]} differs: ${present.map(([who, v]) => `${who} ${show(v)}`).join(', ')}${note}`);
}

async function checkVideo(file: string, full: boolean, t: VerifyTarget, problems: Problems): Promise<number> {
  const csv = t.csvFile ? new CsvRows(t.csvFile, problems) : null;
  const csvRows = csv ? new Aligned('CSV', csv, problems) : null;
  const dbRows = t.store && t.recording ? new Aligned('database', new DbRows(t.store, t.recording.id), problems) : null;
  const tag = full ? '' : ' (mp4)';
  // Size disagreements wait for the end of the file: a cut file shows as a short last frame.
  const sizes: Array<{ index: number; values: Array<[string, number | undefined]> }> = [];
  try {
    const r = await forEachFileFrame(file, (f) => {
      const i = f.position;
      const sei = f.sei;
      if (!sei) problems.add(`frame ${i}${tag}: no rigcam timing SEI in the file`);
      else if (sei.frameIndex !== i) problems.add(`frame ${i}${tag}: the SEI says frame ${sei.frameIndex}`);
      const c = csvRows?.take(i) ?? null;
      const d = dbRows?.take(i) ?? null;
      compare(problems, i, 'captureUs', [['SEI', sei?.captureUs], ['CSV', c?.captureUs], ['database', d?.captureUs]]);
      compare(problems, i, 'wallUs', [['SEI', sei?.wallUs], ['CSV', c?.wallUs], ['database', d?.wallUs]]);
      if (c?.monoUs !== undefined && c.monoUs !== c.captureUs) problems.add(`frame ${i}: CSV record_time_mono (${c.monoUs} µs) is not its capture_us (${c.captureUs})`);
      compare(problems, i, 'keyframe', [['file', f.keyframe], ['CSV', c?.keyframe], ['database', d?.keyframe]]);
      if (!full) return; // an .mp4's PTS and packet sizes are the remuxer's
      compare(problems, i, 'pts', [['file', f.ptsRaw], ['CSV', c?.pts], ['database', d?.pts]]);
      if ((c && c.bytes !== f.bytes) || (d && d.bytes !== f.bytes))
        sizes.push({ index: i, values: [['file', f.bytes], ['CSV', c?.bytes], ['database', d?.bytes]] });
    }).catch((err: Error) => {
      problems.add(`${file}: ${err.message}`);
      return null;
    });
    if (!r) return 0;
    for (const s of sizes) compare(problems, s.index, 'bytes', s.values, r.endsInsidePacket && s.index === r.frames ? ' (the file is cut short in this frame)' : '');
    for (const w of r.warnings) if (w.kind === 'continuity' || w.kind === 'pes') problems.add(`file${tag}: ${w.message}`);
    if (r.endsInsidePacket) problems.add(`file${tag}: ends inside a TS packet: truncated in frame ${r.frames}`);
    const csvLeft = csvRows?.rest() ?? [];
    const dbLeft = dbRows?.rest() ?? [];
    if (csvLeft.length) problems.add(`frames ${ranges(csvLeft)}: in the CSV, not in the file${tag}`);
    if (dbLeft.length) problems.add(`frames ${ranges(dbLeft)}: in the database, not in the file${tag}`);
    if (full && t.recording && t.recording.state !== 'recording' && t.recording.frame_count !== r.frames)
      problems.add(`recording: the database counts ${t.recording.frame_count} frames, the file has ${r.frames}`);
    return r.frames;
  } finally {
    csv?.close();
  }
}

/** Checks every video of the target against its CSV and database rows. */
export async function verifyRecording(t: VerifyTarget): Promise<VerifyReport> {
  const problems = new Problems();
  if (t.csvFile && !existsSync(t.csvFile)) {
    problems.add(`CSV ${t.csvFile}: missing`);
    t = { ...t, csvFile: null };
  }
  let frames = 0;
  let first = true;
  for (const video of t.videos) {
    if (!existsSync(video)) {
      problems.add(`${video}: missing`);
      continue;
    }
    const n = await checkVideo(video, !/\.mp4$/i.test(video), t, problems);
    if (first) frames = n;
    first = false;
  }
  return { ok: problems.total === 0, frames, problems: problems.lines, total: problems.total };
}
