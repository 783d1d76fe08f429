import { execFile } from 'node:child_process';
import { closeSync, linkSync, openSync } from 'node:fs';
import { rm, unlink } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { countVideoFrames } from '../util/ffprobe.ts';
import { syncDir } from '../storage/durable-file.ts';

const run = promisify(execFile);

export interface RemuxResult {
  mp4: string | null;
  mp4Frames: number | null;
  tsDeleted: boolean;
  error: string | null;
}

/**
 * Stream-copy a finished .ts into an .mp4 (faststart, so it streams from the web page). ffmpeg writes a temporary
 * file this process created exclusively; only once it holds exactly the frames the recording logged is it linked
 * to the final name, which must not exist (a file or a symlink already there, dangling or not, is never written
 * through or replaced). The .ts goes only when asked and only after that; any doubt keeps the .ts alone.
 */
export async function remuxToMp4(ts: string, expectedFrames: number, opts: { keepTs: boolean }): Promise<RemuxResult> {
  const mp4 = ts.replace(/\.ts$/, '.mp4');
  const tmp = `${mp4}.${process.pid}.partial`;
  const fail = async (error: string, mp4Frames: number | null = null): Promise<RemuxResult> => {
    await rm(tmp, { force: true });
    return { mp4: null, mp4Frames, tsDeleted: false, error };
  };
  try {
    closeSync(openSync(tmp, 'wx', 0o644));
  } catch (err) {
    return { mp4: null, mp4Frames: null, tsDeleted: false, error: `remux: cannot create ${tmp}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
  }
  try {
    // -copyts keeps the .ts timestamps (the CSV's pts_90k) instead of restarting at 0; the 90 kHz movie timescale
    // keeps the edit list that carries the start from being rounded to the millisecond. -y: the temporary file is
    // the empty one this process just created exclusively.
    await run('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-y', '-copyts', '-i', ts, '-map', '0:v:0', '-c', 'copy', '-movie_timescale', '90000', '-movflags', '+faststart', '-f', 'mp4', tmp]);
  } catch (err) {
    return fail(`remux failed: ${(err as { stderr?: string }).stderr?.trim() || (err as Error).message}`);
  }
  const frames = await countVideoFrames(tmp).catch(() => -1);
  if (frames !== expectedFrames) return fail(`mp4 has ${frames} frames, recording logged ${expectedFrames}: kept the .ts only`, frames);
  try {
    linkSync(tmp, mp4); // fails on anything already at the name, a dangling symlink included
  } catch (err) {
    return fail(`remux: ${mp4} already exists (${(err as NodeJS.ErrnoException).code}): kept the .ts only`, frames);
  }
  await unlink(tmp);
  syncDir(path.dirname(mp4));
  let tsDeleted = false;
  if (!opts.keepTs) {
    await unlink(ts);
    syncDir(path.dirname(ts));
    tsDeleted = true;
  }
  return { mp4, mp4Frames: frames, tsDeleted, error: null };
}
