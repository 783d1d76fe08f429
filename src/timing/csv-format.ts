import { parse } from 'csv-parse/sync';
import type { FrameRow } from './frame-row.ts';

/**
 * The CSV sidecar. Its first nine columns are those of the Raspberry Pi logger rigcam descends from, same
 * names and meaning, so existing analysis scripts read it unchanged: record_time_unix (%.6f s) and
 * record_time_mono (%.9f s) are the frame's capture time on the wall and monotonic clocks, frame_index is
 * 1-based, sensor_timestamp_ns the capture timestamp in ns, video_pts the frame's index in the video (as the
 * logger writes it, a frame count, not a timestamp). rigcam's own columns follow; pts_90k, last, is the frame's
 * PTS in the .ts file (90 kHz ticks; the .mp4 remux keeps them).
 */
export const CSV_HEADER =
  'trial,module,device_id,label,record_time_unix,record_time_mono,frame_index,sensor_timestamp_ns,video_pts,' +
  'capture_us,interval_us,missing_before,keyframe,bytes,flags,pts_90k';

export interface CsvContext {
  trial: number;
  /** The logger's module names: USBCameras, CSICameras; TestCameras for the test source. */
  module: string;
  deviceId: string;
  label: string;
}

/**
 * A text cell. Cells a spreadsheet would run as a formula (starting with = + - @, or a tab or CR before one) get a
 * leading apostrophe, as OWASP recommends for CSV injection: the label stays readable, nothing is executed.
 */
export function csvField(s: string): string {
  const safe = /^[=+\-@\t\r]/.test(s) ? `'${s}` : s;
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export function csvLine(ctx: CsvContext, r: FrameRow): string {
  const wall = (r.wallUs / 1e6).toFixed(6);
  const mono = (r.captureUs / 1e6).toFixed(9);
  return [
    ctx.trial,
    csvField(ctx.module),
    csvField(ctx.deviceId),
    csvField(ctx.label),
    wall,
    mono,
    r.index,
    `${r.captureUs}000`,
    r.index,
    r.captureUs,
    r.intervalUs ?? '',
    r.missingBefore,
    r.keyframe ? 1 : 0,
    r.bytes,
    r.flags,
    r.pts,
  ].join(',');
}

export function moduleName(kind: 'test' | 'v4l2' | 'rpicam'): string {
  return kind === 'v4l2' ? 'USBCameras' : kind === 'rpicam' ? 'CSICameras' : 'TestCameras';
}

/** A frame row as read back from a CSV sidecar (which also carries the trial label). */
export type CsvFrameRow = Omit<FrameRow, 'recordingId'> & { label: string };

export interface CsvTable {
  header: string[];
  /** Whole records, each as its fields by header name. */
  rows: Array<Record<string, string>>;
  /** The text ended inside a record (a crash mid-write): that record is left out. */
  torn: boolean;
}

/**
 * The project's one CSV reader (RFC 4180 through csv-parse: quoted fields with commas, quotes and line breaks).
 * A record is whole only when its line break was written and it has every column: a torn last record (cut inside
 * a quote or mid-line) is left out, never half-read. Fields are looked up by header name, never by position.
 */
export function readCsv(text: string): CsvTable {
  const records: string[][] = [];
  let torn = false;
  try {
    parse(text, {
      relax_column_count: true,
      skip_empty_lines: true,
      bom: true,
      record_delimiter: ['\r\n', '\n'],
      on_record: (r: string[]) => {
        records.push(r);
        return null;
      },
    });
  } catch (err) {
    if ((err as { code?: string }).code !== 'CSV_QUOTE_NOT_CLOSED') throw err;
    torn = true; // the last record was cut inside a quoted field: the records before it are whole
  }
  const header = records.shift() ?? [];
  if (!torn && text.length && !text.endsWith('\n') && records.length) {
    records.pop(); // its line break never reached the disk
    torn = true;
  }
  const rows: Array<Record<string, string>> = [];
  for (const r of records) {
    if (r.length !== header.length) {
      torn = true;
      break;
    }
    rows.push(Object.fromEntries(header.map((h, i) => [h, r[i]!])));
  }
  return { header, rows, torn };
}

/** The frame rows of a sidecar's text, by column name. Stops at a torn last record (a crash mid-write). */
export function parseTimingCsv(text: string): CsvFrameRow[] {
  const { rows } = readCsv(text);
  const num = (r: Record<string, string>, k: string): number => Number(r[k] ?? NaN);
  const out: CsvFrameRow[] = [];
  for (const r of rows) {
    const row: CsvFrameRow = {
      index: num(r, 'frame_index'),
      captureUs: num(r, 'capture_us'),
      wallUs: Math.round(num(r, 'record_time_unix') * 1e6),
      intervalUs: r.interval_us === '' || r.interval_us === undefined ? null : Number(r.interval_us),
      missingBefore: num(r, 'missing_before'),
      // Sidecars written before pts_90k existed carry the PTS in video_pts.
      pts: num(r, r.pts_90k !== undefined ? 'pts_90k' : 'video_pts'),
      keyframe: r.keyframe === '1',
      bytes: num(r, 'bytes'),
      flags: r.flags ?? '',
      label: r.label ?? '',
    };
    // A marker-only line (no frame) or a line whose numbers did not survive is not a frame row.
    if (![row.index, row.captureUs, row.wallUs, row.pts].every(Number.isFinite)) continue;
    out.push(row);
  }
  return out;
}

/** One CSV line (a record without line breaks inside quotes) split into its fields, by the same RFC 4180 reader. */
export function splitCsvLine(line: string): string[] {
  const records = parse(line, { relax_column_count: true, record_delimiter: ['\r\n', '\n'] }) as string[][];
  if (records.length !== 1) throw new Error(`expected one CSV record, found ${records.length}`);
  return records[0]!;
}
