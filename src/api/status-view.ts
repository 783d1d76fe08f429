import { existsSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import path from 'node:path';
import { monoNowUs } from '../clock.ts';
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
/** Sync pulse health (issue 18): per sync line of the newest run, pulses seen and the last edge. */
export interface SyncView {
  configured: boolean;
  now_mono_us: number;
  lines: Array<{ direction: 'in' | 'out'; line: number; edges: number; pulses: number; last_mono_us: number; last_age_s: number }>;
}

function syncView(c: ApiContext): SyncView | null {
  const g = c.config.gpio;
  const configured = Boolean(g.outputs.sync_out) || g.inputs.some((i) => i.mode === 'sync');
  if (!configured) return null;
  const now = monoNowUs();
  const lines = c.store.syncHealth().map((h) => ({
    direction: h.direction,
    line: h.line,
    edges: h.edges,
    pulses: h.pulses,
    last_mono_us: h.last_mono_us,
    last_age_s: Math.round((now - h.last_mono_us) / 1e4) / 100,
  }));
  return { configured, now_mono_us: now, lines };
}

export async function statusView(
  c: ApiContext,
): Promise<Omit<BoxStatus, 'cameras' | 'disk'> & { cameras: Array<CameraStatus & { preview: PreviewState }>; disk: BoxStatus['disk'] | DiskView | null; sync: SyncView | null }> {
  const s = c.box.status();
  const cameras = s.cameras.map((cam) => ({ ...cam, preview: c.hub.state(cam.camera_id) }));
  return { ...s, cameras, disk: s.disk ?? (await diskFallback(c)), sync: syncView(c) };
}
