import { closeSync, existsSync, openSync, statSync, writeSync } from 'node:fs';
import { z } from 'zod';
import { forEachFileFrame } from '../pipeline/file-frames.ts';

export const timingArgsSchema = z.strictObject({
  file: z.string().min(1, 'FILE is required'),
  csv: z.string().min(1, '--csv needs a file name').optional(),
});
export type TimingArgs = z.infer<typeof timingArgsSchema>;

export const TIMING_CSV_HEADER = 'frame_index,capture_us,wall_us,pts';

export interface TimingRunResult {
  frames: number;
  withoutSei: number;
}

/**
 * `rigcam timing FILE [--csv OUT]`: the per-frame times a .ts or .mp4 carries in its SEI, as CSV (frame_index,
 * capture_us, wall_us, pts), to stdout or to a new file OUT (never overwritten). A frame without rigcam's SEI
 * gets its position in the file and empty times.
 */
export async function runTiming(args: TimingArgs, stdout: (s: string) => void): Promise<TimingRunResult> {
  if (!existsSync(args.file) || !statSync(args.file).isFile()) throw new Error(`${args.file}: no such file`);
  const fd = args.csv ? openSync(args.csv, 'wx', 0o644) : null;
  const out = fd === null ? stdout : (s: string): void => void writeSync(fd, s);
  let buf = TIMING_CSV_HEADER + '\n';
  let withoutSei = 0;
  try {
    const r = await forEachFileFrame(args.file, (f) => {
      if (f.sei) buf += `${f.sei.frameIndex},${f.sei.captureUs},${f.sei.wallUs},${f.ptsRaw}\n`;
      else {
        withoutSei += 1;
        buf += `${f.position},,,${f.ptsRaw}\n`;
      }
      if (buf.length > 1 << 16) {
        out(buf);
        buf = '';
      }
    });
    out(buf);
    return { frames: r.frames, withoutSei };
  } finally {
    if (fd !== null) closeSync(fd);
  }
}
