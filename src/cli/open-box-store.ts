import { statfs } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config/schema.ts';
import { mb } from '../disk/disk-guard.ts';
import { SpaceReserve } from '../disk/reserve.ts';
import type { Logger } from '../log/logger.ts';
import { DatabaseOpenError, openStoreWithRecovery, type OpenedStore } from '../storage/open-store.ts';

/**
 * Open the database for a box (`serve`, `module`, `record`) even on a full disk. With less than two reserves free
 * on the recordings or the database's volume, the database's reserve is given back (SQLite needs room to open a WAL
 * database at all) and the recovery that writes (adopting orphans, reconciling) is postponed: the box comes up,
 * refuses trials saying why, and runs it once there is room. The same when opening fails for want of space.
 */
export async function openBoxStore(config: Config, dbFile: string, root: string, log: Logger): Promise<OpenedStore & { reserve: SpaceReserve }> {
  const reserve = new SpaceReserve(path.dirname(dbFile));
  const floor = 2 * reserve.bytes;
  const free = await Promise.all([root, path.dirname(dbFile)].map((d) => freeBytes(d)));
  const full = free.some((f) => f !== null && f < floor);
  const release = (why: string): void => {
    if (reserve.release()) log.warn({ file: reserve.file, free: free.map((f) => (f === null ? null : mb(f))) }, `database reserve released: ${why}`);
  };
  if (full) {
    release('the disk is full');
    log.error({ free_bytes: free }, 'the disk is full: adopting and reconciling recordings is postponed until there is room; trials are refused until then');
  }
  const diskFull = (err: unknown): err is DatabaseOpenError => err instanceof DatabaseOpenError && err.diskFull;
  try {
    return { ...(await openStoreWithRecovery(dbFile, root, log, { postpone: full })), reserve };
  } catch (err) {
    if (!diskFull(err)) throw err;
    release(`opening the database failed: ${err.code}`);
  }
  try {
    return { ...(await openStoreWithRecovery(dbFile, root, log, { postpone: true })), reserve };
  } catch (err) {
    if (!diskFull(err)) throw err;
    // No reserve left (used up by an earlier start on this full disk): the WAL index in memory, this process only.
    log.error({ code: err.code }, 'the disk is too full to open the database shared: opened for rigcam alone (the rigcam recordings CLI waits until rigcam restarts)');
    return { ...(await openStoreWithRecovery(dbFile, root, log, { postpone: true, exclusive: true })), reserve };
  }
}

async function freeBytes(dir: string): Promise<number | null> {
  try {
    const s = await statfs(dir);
    return s.bavail * s.bsize;
  } catch {
    return null; // not there yet: created later
  }
}
