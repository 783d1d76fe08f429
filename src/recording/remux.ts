import { execFile } from 'node:child_process';
import { unlink, rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import { countVideoFrames } from '../util/ffprobe.ts';
import { syncDirOf } from './ts-file-writer.ts';

const run = promisify(execFile);

export interface RemuxResult {
  mp4: string | null;
  mp4Frames: number | null;
  tsDeleted: boolean;
  error: string | null;
}

/**
 * Stream-copy a finished .ts into an .mp4 (faststart, so it streams from the web page). The .ts goes only
 * when asked and only when the MP4 holds exactly the frames the recording logged; any doubt keeps both.
 */
export async function remuxToMp4(ts: string, expectedFrames: number, opts: { keepTs: boolean }): Promise<RemuxResult> {
  const mp4 = ts.replace(/\.ts$/, '.mp4');
  try {
    // -copyts keeps the .ts timestamps (the CSV's pts_90k) instead of restarting at 0; the 90 kHz movie timescale
    // keeps the edit list that carries the start from being rounded to the millisecond.
    await run('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-n', '-copyts', '-i', ts, '-map', '0:v:0', '-c', 'copy', '-movie_timescale', '90000', '-movflags', '+faststart', mp4]);
  } catch (err) {
    await rm(mp4, { force: true });
    return { mp4: null, mp4Frames: null, tsDeleted: false, error: `remux failed: ${(err as { stderr?: string }).stderr?.trim() || (err as Error).message}` };
  }
  const frames = await countVideoFrames(mp4).catch(() => -1);
  if (frames !== expectedFrames) {
    return { mp4, mp4Frames: frames, tsDeleted: false, error: `mp4 has ${frames} frames, recording logged ${expectedFrames}: kept the .ts` };
  }
  let tsDeleted = false;
  if (!opts.keepTs) {
    await unlink(ts);
    syncDirOf(ts);
    tsDeleted = true;
  }
  return { mp4, mp4Frames: frames, tsDeleted, error: null };
}
