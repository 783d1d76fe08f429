import { statSync, unlinkSync } from 'node:fs';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';

/** Enough for SQLite to open a WAL database (its 32 kB -shm, the -wal) and journal for a long while. */
export const RESERVE_BYTES = 4 * 1024 * 1024;

/**
 * Space kept for the database: `<data_dir>/rigcam.reserve`, a file of real (written) blocks. SQLite cannot even open
 * a WAL database on a full volume (it must create its -shm), so a box restarted on a full disk could not come up;
 * deleting the reserve gives it the room to open, journal and say why it refuses trials. It is written again once
 * the volume has space to spare.
 */
export class SpaceReserve {
  readonly file: string;

  constructor(
    dataDir: string,
    readonly bytes = RESERVE_BYTES,
  ) {
    this.file = path.join(dataDir, 'rigcam.reserve');
  }

  get held(): boolean {
    try {
      return statSync(this.file).size === this.bytes;
    } catch {
      return false;
    }
  }

  /** Give the space back to the volume. True when a reserve was there. */
  release(): boolean {
    try {
      unlinkSync(this.file);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Write the reserve if it is missing: zeros to a temporary created exclusively, fsynced, then renamed (a reserve
   * cut short by a full disk or a crash is never taken for a whole one). Asynchronous: the event loop is never held
   * by 4 MB of writes and an fsync on an SD card. False when it could not be written.
   */
  async ensure(): Promise<boolean> {
    if (this.held) return true;
    const tmp = `${this.file}.tmp`;
    await rm(tmp, { force: true });
    let fh: FileHandle | null = null;
    try {
      fh = await open(tmp, 'wx', 0o600);
      const chunk = Buffer.alloc(256 * 1024);
      for (let done = 0; done < this.bytes; ) done += (await fh.write(chunk, 0, Math.min(chunk.length, this.bytes - done))).bytesWritten;
      await fh.sync();
      await fh.close();
      fh = null;
      await rename(tmp, this.file);
      return true;
    } catch {
      await fh?.close().catch(() => undefined);
      await rm(tmp, { force: true }).catch(() => undefined);
      return false;
    }
  }
}
