import { existsSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import path from 'node:path';
import type { BoxStatus, CameraStatus } from '../runtime/status.ts';
import type { ApiContext } from './context.ts';
import type { PreviewState } from '../pipeline/preview.ts';

export interface DiskView {
  free_bytes: number;
  total_bytes: number;
  minutes_left: number | null;
  level: string | null;
}

/**
 * Free space of the recordings volume, used only while the runtime's status has no `disk` of its own: minutes left
 * are estimated from the configured bitrates of the armed cameras.
 */
async function diskFallback(c: ApiContext): Promise<DiskView | null> {
  try {
    let dir = path.resolve(c.root);
    while (!existsSync(dir) && path.dirname(dir) !== dir) dir = path.dirname(dir); // before the first recording
    const s = await statfs(dir);
    const free = s.bavail * s.bsize;
    const kbps = c.config.cameras.filter((cam) => cam.armed).reduce((sum, cam) => sum + cam.bitrate_kbps, 0);
    const bytesPerMinute = (kbps * 1000 * 60) / 8;
    return { free_bytes: free, total_bytes: s.blocks * s.bsize, minutes_left: bytesPerMinute ? Math.floor(free / bytesPerMinute) : null, level: null };
  } catch {
    return null; // the page shows "unknown"
  }
}

/**
 * The runtime's status with what the API adds per camera: what the live preview costs (viewers, decoder running).
 */
export async function statusView(c: ApiContext): Promise<Omit<BoxStatus, 'cameras' | 'disk'> & { cameras: Array<CameraStatus & { preview: PreviewState }>; disk: BoxStatus['disk'] | DiskView | null }> {
  const s = c.box.status();
  const cameras = s.cameras.map((cam) => ({ ...cam, preview: c.hub.state(cam.camera_id) }));
  return { ...s, cameras, disk: s.disk ?? (await diskFallback(c)) };
}
