import { open } from 'node:fs/promises';
import type { Writable } from 'node:stream';

/**
 * File bytes to an HTTP response (downloads, session tars) through two buffers reused for the whole file. A read
 * stream allocates a buffer per read, each freed only when the collector gets to it: a 40 MiB session downloaded
 * while a trial recorded took the service from 83 to 121 MiB (issue 17). Here a buffer is read into again only once
 * the socket has taken what was written from it, which is also the download's backpressure.
 */

const CHUNK = 256 * 1024;

/** Written and taken by the socket: true; the client is gone: false. */
export function written(res: Writable, chunk: Buffer): Promise<boolean> {
  if (res.destroyed) return Promise.resolve(false);
  return new Promise((resolve) => {
    const gone = (): void => resolve(false);
    res.once('close', gone); // a write's callback is not promised once the socket is destroyed
    res.write(chunk, (err) => {
      res.off('close', gone);
      resolve(!err);
    });
  });
}

/**
 * Send `length` bytes of `file` from `start`. Resolves to the bytes sent (fewer when the file is shorter than that)
 * and whether the client went away meanwhile (then the caller stops).
 */
export async function sendFileBytes(res: Writable, file: string, start: number, length: number): Promise<{ bytes: number; gone: boolean }> {
  const fh = await open(file, 'r');
  try {
    const size = Math.max(1, Math.min(CHUNK, length));
    const bufs = [Buffer.allocUnsafe(size), Buffer.allocUnsafe(size)];
    let previous: Promise<boolean> = Promise.resolve(true); // the write from the other buffer
    let bytes = 0;
    for (let i = 0; bytes < length; i ^= 1) {
      // This buffer's last write was awaited (as `previous`) before the other buffer's write went out.
      const buf = bufs[i]!;
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, length - bytes), start + bytes);
      if (!(await previous)) return { bytes, gone: true };
      if (bytesRead === 0) break;
      previous = written(res, buf.subarray(0, bytesRead));
      bytes += bytesRead;
    }
    return { bytes, gone: !(await previous) };
  } finally {
    await fh.close();
  }
}

/** `n` zero bytes, a chunk at a time (a file that shrank under a tar header that declared it larger). */
export async function sendZeros(res: Writable, n: number): Promise<boolean> {
  const zeros = Buffer.alloc(Math.min(CHUNK, n));
  for (let left = n; left > 0; left -= zeros.length) if (!(await written(res, left >= zeros.length ? zeros : zeros.subarray(0, left)))) return false;
  return true;
}
