import { closeSync, fsync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

// Files that must survive a power cut: the one place that creates, replaces and fsyncs them (sidecars, session.json,
// control state, the Pi pipeline config) and syncs directory entries.

/** fsync a directory so the entries just created or renamed in it survive a power cut. */
export function syncDir(dir: string): void {
  let fd: number | null = null;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    /* some filesystems refuse fsync on directories; the data itself is still synced */
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

const fsyncAsync = promisify(fsync);

/**
 * fsync a file or directory through the threadpool in one round trip. Opening an existing path and closing it are
 * µs on the event loop; only the fsync waits for the disk. (open, fsync and close each through the threadpool were
 * three hand-offs, each also waiting for a turn of the event loop: on a trial start's path, issue 17.)
 */
export async function fsyncPath(p: string): Promise<void> {
  const fd = openSync(p, 'r');
  try {
    await fsyncAsync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * fsyncPath for a directory whose new entries must be durable before something is announced: a filesystem that
 * refuses fsync on directories (EINVAL, EISDIR, ENOTSUP) counts as synced, as in syncDir; any other failure (EIO)
 * is the caller's.
 */
export async function fsyncDir(dir: string): Promise<void> {
  await fsyncPath(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EINVAL' && err.code !== 'EISDIR' && err.code !== 'ENOTSUP') throw err;
  });
}

/** Create a file exclusively (never over an existing entry) with `text`, fsynced unless `sync` is false. */
export function writeNewFile(file: string, text: string, sync = true): void {
  const fd = openSync(file, 'wx', 0o644);
  try {
    writeSync(fd, text);
    if (sync) fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Replace a small file atomically and durably: a temporary name created exclusively, fsync, rename, directory fsync. */
export function replaceFile(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    unlinkSync(tmp); // left by an earlier crash of a process with this pid
  } catch {
    /* none */
  }
  try {
    writeNewFile(tmp, text);
    renameSync(tmp, file);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      /* never created */
    }
    throw err;
  }
  syncDir(path.dirname(file));
}

/**
 * replaceFile through the threadpool: the same steps (exclusive temporary file, fsync, rename, directory fsync)
 * without holding the event loop for the fsyncs, which take 1–15 ms each here and more on an SD card. For writes
 * made while triggers may arrive (a trigger's arrival is stamped on the loop): the sidecar at a stop, session.json.
 * Resolves to the bytes written.
 */
export async function replaceFileAsync(file: string, content: string | Iterable<string>): Promise<number> {
  const tmp = `${file}.tmp-${process.pid}`;
  await unlink(tmp).catch(() => undefined); // left by an earlier crash of a process with this pid
  let bytes: number;
  try {
    const fh = await open(tmp, 'wx', 0o644);
    try {
      if (typeof content === 'string') {
        await fh.writeFile(content);
        bytes = Buffer.byteLength(content);
      } else bytes = await writeParts(fh, content);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fsyncPath(path.dirname(file)).catch(() => undefined); // some filesystems refuse fsync on directories
  return bytes;
}

/**
 * A document made part by part (a generator doing a little work per part): each part is made in its own turn of the
 * event loop, and the text goes out in writes of about 64 KiB, so the whole is never held at once.
 */
async function writeParts(fh: FileHandle, parts: Iterable<string>): Promise<number> {
  let pending = '';
  let total = 0;
  const flush = async (): Promise<void> => {
    const b = Buffer.from(pending);
    pending = '';
    for (let off = 0; off < b.length; ) off += (await fh.write(b, off, b.length - off)).bytesWritten;
    total += b.length;
  };
  for (const part of parts) {
    pending += part;
    if (pending.length >= 65536) await flush();
    else await new Promise((r) => setImmediate(r));
  }
  if (pending) await flush();
  return total;
}

