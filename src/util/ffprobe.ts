import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Frames in a video file's first video stream as ffprobe counts them. `decode` counts decoded frames
 * (-count_frames: proves the frames play); otherwise packets (-count_packets: fast, no decoding).
 */
export async function countVideoFrames(file: string, opts: { decode?: boolean } = {}): Promise<number> {
  const flag = opts.decode ? '-count_frames' : '-count_packets';
  const entry = opts.decode ? 'stream=nb_read_frames' : 'stream=nb_read_packets';
  const { stdout } = await run('ffprobe', ['-v', 'error', flag, '-select_streams', 'v:0', '-show_entries', entry, '-of', 'csv=p=0', file], {
    maxBuffer: 1 << 20,
  });
  const n = Number.parseInt(stdout.trim().split(/[\n,]/)[0] ?? '', 10);
  if (!Number.isFinite(n)) throw new Error(`ffprobe could not count frames of ${file}: ${stdout.trim()}`);
  return n;
}
