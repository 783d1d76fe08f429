import { openSync, writeSync, fsync, close as closeCb } from 'node:fs';
import { promisify } from 'node:util';
import type { FrameRow } from './frame-row.ts';
import { writeAsync } from './ts-file-writer.ts';

/**
 * The CSV sidecar. Its first nine columns are those of the Raspberry Pi logger rigcam descends from, same
 * names and meaning, so existing analysis scripts read it unchanged: record_time_unix (%.6f s) and
 * record_time_mono (%.9f s) are the frame's capture time on the wall and monotonic clocks, frame_index is
 * 1-based, sensor_timestamp_ns the capture timestamp in ns, video_pts the frame's PTS in the video file
 * (90 kHz ticks). rigcam's own columns follow.
 */
export const CSV_HEADER =
  'trial,module,device_id,label,record_time_unix,record_time_mono,frame_index,sensor_timestamp_ns,video_pts,' +
  'capture_us,interval_us,missing_before,keyframe,bytes,flags';

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
    r.pts,
    r.captureUs,
    r.intervalUs ?? '',
    r.missingBefore,
    r.keyframe ? 1 : 0,
    r.bytes,
    r.flags,
  ].join(',');
}

export function moduleName(kind: 'test' | 'v4l2' | 'rpicam'): string {
  return kind === 'v4l2' ? 'USBCameras' : kind === 'rpicam' ? 'CSICameras' : 'TestCameras';
}

/** Appends rows in batches; the header goes first. Created synchronously, written asynchronously. */
export class TimingCsvWriter {
  private fd: number | null;
  private chain: Promise<void> = Promise.resolve();
  private failure: Error | null = null;

  constructor(
    readonly file: string,
    private readonly ctx: CsvContext,
  ) {
    this.fd = openSync(file, 'wx', 0o644);
    writeSync(this.fd, CSV_HEADER + '\n');
  }

  get error(): Error | null {
    return this.failure;
  }

  append(rows: readonly FrameRow[]): void {
    const fd = this.fd;
    if (!rows.length || fd === null || this.failure) return;
    const text = rows.map((r) => csvLine(this.ctx, r)).join('\n') + '\n';
    this.chain = this.chain.then(async () => {
      if (this.failure) return;
      try {
        await writeAsync(fd, text);
      } catch (err) {
        this.failure = err as Error;
      }
    });
  }

  async close(): Promise<void> {
    const fd = this.fd;
    this.fd = null;
    await this.chain;
    if (fd === null) return;
    await promisify(fsync)(fd).catch(() => undefined);
    await promisify(closeCb)(fd);
  }
}
