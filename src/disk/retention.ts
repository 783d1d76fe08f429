import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../log/logger.ts';
import { sidecarPathFor } from '../storage/sidecar.ts';
import type { Store } from '../storage/store.ts';

/**
 * Free space by deleting recordings, oldest first, but only those marked as offloaded (copied off the box).
 * Anything not known to be copied is never touched, whatever the disk says.
 */
export async function applyRetention(o: {
  store: Store;
  root: string;
  log: Logger;
  freeBytes: () => Promise<number>;
  keepFreeBytes: number;
  /** Only offloads verified by checksum count (disk.retention.require_verified_offload). */
  verifiedOnly?: boolean;
}): Promise<number[]> {
  const deleted: number[] = [];
  while ((await o.freeBytes()) < o.keepFreeBytes) {
    const [rec] = o.store.offloadedOldestFirst(1, o.verifiedOnly ?? false);
    if (!rec) break;
    // The videos first, then what describes them (CSV, JSON sidecar): a run cut short leaves at worst a sidecar
    // without its video, which adoption ignores (it registers video files only), never a video without its sidecar.
    const videos = [rec.path, rec.mp4_path].filter((p): p is string => Boolean(p));
    const sidecars = [...new Set(videos.map((v) => sidecarPathFor(v)))];
    for (const rel of [...videos, rec.csv_path, ...sidecars]) {
      if (!rel) continue;
      const abs = path.resolve(o.root, rel);
      const r = path.relative(o.root, abs);
      if (r.startsWith('..') || path.isAbsolute(r)) continue; // never outside the root, whatever the database says
      await rm(abs, { force: true });
    }
    o.store.markDeleted(rec.id);
    o.log.info({ recording: rec.id, path: rec.path, offloaded_at: rec.offloaded_at }, 'retention: deleted offloaded recording');
    deleted.push(rec.id);
  }
  return deleted;
}
