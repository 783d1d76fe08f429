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

function csvField(s: string): string {
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
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

/** One CSV line's fields, quotes as csvField writes them ("a ""b"", c"). */
export function splitCsvLine(line: string): string[] {
  const out: string[] = [];
  let i = 0;
  for (;;) {
    if (line[i] === '"') {
      let v = '';
      i += 1;
      for (;;) {
        const q = line.indexOf('"', i);
        if (q < 0) return [...out, v + line.slice(i)]; // unterminated: a torn line
        v += line.slice(i, q);
        if (line[q + 1] === '"') {
          v += '"';
          i = q + 2;
        } else {
          i = q + 1;
          break;
        }
      }
      out.push(v);
    } else {
      const c = line.indexOf(',', i);
      out.push(line.slice(i, c < 0 ? undefined : c));
      if (c < 0) return out;
      i = c;
    }
    if (line[i] !== ',') return out;
    i += 1;
  }
}

/** The frame rows of a sidecar's text, by column name. Stops at a torn last line (a crash mid-write). */
export function parseTimingCsv(text: string): CsvFrameRow[] {
  const lines = text.split('\n');
  const header = lines.shift()?.split(',') ?? [];
  const col = (name: string): number => header.indexOf(name);
  const out: CsvFrameRow[] = [];
  let pending = '';
  for (const part of lines) {
    // A quoted label may hold a line break: a record ends where its quotes are balanced.
    const line = pending ? `${pending}\n${part}` : part;
    if ((line.match(/"/g)?.length ?? 0) % 2 === 1) {
      pending = line;
      continue;
    }
    pending = '';
    if (!line) continue;
    const f = splitCsvLine(line);
    if (f.length < header.length) break; // a torn last line
    out.push({
      index: Number(f[col('frame_index')]),
      captureUs: Number(f[col('capture_us')]),
      wallUs: Math.round(Number(f[col('record_time_unix')]) * 1e6),
      intervalUs: f[col('interval_us')] === '' ? null : Number(f[col('interval_us')]),
      missingBefore: Number(f[col('missing_before')]),
      // Sidecars written before pts_90k existed carry the PTS in video_pts.
      pts: Number(f[col('pts_90k') >= 0 ? col('pts_90k') : col('video_pts')]),
      keyframe: f[col('keyframe')] === '1',
      bytes: Number(f[col('bytes')]),
      flags: f[col('flags')] ?? '',
      label: f[col('label')] ?? '',
    });
  }
  return out;
}
