import { fdatasync, fsync, ftruncate, openSync, write, writev, close as closeCb } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { TS_PACKET_SIZE } from '../pipeline/access-unit.ts';
import type { StartSyncs } from './start-syncs.ts';
import { syncDir } from '../storage/durable-file.ts';

/**
 * fs.write as a promise of the bytes written (a short write is possible and handled by the caller); at `pos`
 * when given, else at the file position.
 */
export function writeAsync(fd: number, buf: Buffer, off = 0, len?: number, pos: number | null = null): Promise<number> {
  return new Promise((resolve, reject) => {
    write(fd, buf, off, len ?? buf.length - off, pos, (err, n) => (err ? reject(err) : resolve(n)));
  });
}
/**
 * fs.writev as a promise of the bytes written (possibly short). One system call for a batch of frames, none of
 * them copied into one buffer first.
 */
function writevAsync(fd: number, bufs: Buffer[]): Promise<number> {
  return new Promise((resolve, reject) => {
    writev(fd, bufs, (err, n) => (err ? reject(err) : resolve(n)));
  });
}
/**
 * What is queued is copied into slabs of this size (a frame bigger than a slab gets its own): one allocation per
 * many frames rather than one per frame. A slab is freed once every frame in it is written.
 */
const SLAB_BYTES = 256 * 1024;
/** Buffers per writev call (IOV_MAX is 1024 on Linux). */
const IOV_BATCH = 512;
const datasyncAsync = promisify(fdatasync);
const fsyncAsync = promisify(fsync);
const truncateAsync = promisify(ftruncate);
const closeAsync = promisify(closeCb);

interface QueueItem {
  buf: Buffer;
  onWritten?: () => void;
}

/**
 * Appends whole TS packets to a new file. The continuity counters are renumbered per PID so every file is a
 * clean stream from its first byte, whatever part of the live stream it starts at. The file is created
 * synchronously (a trigger must not wait on the event loop) and written asynchronously (an SD card can stall
 * for a second) with the queue depth visible; it is fdatasync'ed periodically so a power cut loses at most
 * one interval.
 */
export class TsFileWriter {
  private fd: number | null;
  private readonly queue: QueueItem[] = [];
  private queuedBytes = 0;
  private queuedFrames = 0;
  private draining: Promise<void> | null = null;
  /** Last continuity counter written per PID, -1 before its first packet (typed: looked up for every packet). */
  private readonly cc = new Int8Array(8192).fill(-1);
  private readonly syncTimer: NodeJS.Timeout;
  private written = 0;
  private slab: Buffer | null = null;
  private slabUsed = 0;
  private failure: Error | null = null;
  private closed = false;

  /** Create the file; refuses to overwrite an existing one (flag wx). Throws on failure. */
  constructor(
    readonly file: string,
    opts: { fsyncIntervalMs: number; onError: (err: Error) => void; syncs?: StartSyncs },
  ) {
    this.onError = opts.onError;
    this.fd = openSync(file, 'wx', 0o644);
    // Make the new directory entry durable too, so a power cut cannot lose the whole file (now, or in the start's
    // batch of fsyncs, which completes before the start announces the file).
    if (opts.syncs) opts.syncs.entryOf(file);
    else syncDir(path.dirname(file));
    this.syncTimer = setInterval(() => void this.sync(), opts.fsyncIntervalMs);
    this.syncTimer.unref();
  }

  private readonly onError: (err: Error) => void;

  get bytesWritten(): number {
    return this.written;
  }

  get pending(): { bytes: number; frames: number } {
    return { bytes: this.queuedBytes, frames: this.queuedFrames };
  }

  get error(): Error | null {
    return this.failure;
  }

  /**
   * Queue packets (PSI, or one frame with `onWritten`, called once its last byte is in the file, so the frame
   * timing never lists a frame the file lacks), given whole or as consecutive parts. Returns false once the writer
   * has failed or closed. They are copied (the pre-roll ring and other files still hold the originals, which may be
   * views of the source's pipe chunks) and renumbered in the copy.
   */
  write(packets: Buffer | Buffer[], onWritten?: () => void): boolean {
    if (this.failure || this.closed) return false;
    const parts = Array.isArray(packets) ? packets : [packets];
    let len = 0;
    for (const p of parts) len += p.length;
    const out = this.take(len);
    let at = 0;
    for (const p of parts) at += p.copy(out, at);
    for (let off = 0; off + TS_PACKET_SIZE <= out.length; off += TS_PACKET_SIZE) this.renumber(out, off);
    this.queue.push({ buf: out, onWritten });
    this.queuedBytes += out.length;
    if (onWritten) this.queuedFrames += 1;
    // Started after the current task, so what it queues together (PAT/PMT and its keyframe) goes in one write.
    if (!this.draining) this.draining = Promise.resolve().then(() => this.drain());
    return true;
  }

  /** `n` bytes of the current slab (a new slab when it is full). */
  private take(n: number): Buffer {
    if (n > SLAB_BYTES / 4) return Buffer.allocUnsafeSlow(n); // a big frame: its own memory, no slab kept for it
    if (!this.slab || this.slab.length - this.slabUsed < n) {
      this.slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
      this.slabUsed = 0;
    }
    const out = this.slab.subarray(this.slabUsed, this.slabUsed + n);
    this.slabUsed += n;
    return out;
  }

  private renumber(buf: Buffer, off: number): void {
    const pid = ((buf[off + 1]! & 0x1f) << 8) | buf[off + 2]!;
    const afc = (buf[off + 3]! >> 4) & 0x3;
    const hasPayload = afc === 1 || afc === 3;
    const prev = this.cc[pid]!;
    // The counter advances only on packets with payload (ISO 13818-1 2.4.3.3).
    const next = prev < 0 ? 0 : hasPayload ? (prev + 1) & 0xf : prev;
    this.cc[pid] = next;
    buf[off + 3] = (buf[off + 3]! & 0xf0) | next;
  }

  private async drain(): Promise<void> {
    let batch: QueueItem[] = [];
    let off = 0;
    try {
      while (this.queue.length && !this.failure && this.fd !== null) {
        batch = this.queue.splice(0, Math.min(this.queue.length, IOV_BATCH));
        off = 0;
        if (batch.length === 1) {
          const buf = batch[0]!.buf;
          while (off < buf.length) off += await writeAsync(this.fd, buf, off, buf.length - off);
        } else {
          // Frames (and the PAT/PMT before a keyframe) queued while the previous write was under way: one writev.
          const total = batch.reduce((n, b) => n + b.buf.length, 0);
          off = await writevAsync(this.fd, batch.map((b) => b.buf));
          // A short writev (rare: a full disk, a signal) finishes with plain writes of what is left.
          let pos = 0;
          for (const item of batch) {
            const end = pos + item.buf.length;
            while (off < end) off += await writeAsync(this.fd, item.buf, off - pos, end - off);
            pos = end;
          }
          if (off !== total) throw new Error(`writev accounting: ${off} of ${total} bytes`);
        }
        this.complete(batch, off);
        batch = [];
      }
    } catch (err) {
      this.failure = err as Error;
      // Keep what was fully written and cut a torn item off, so the file ends on the packet boundary the frame
      // timing ends on.
      this.complete(batch, off);
      if (this.fd !== null) await truncateAsync(this.fd, this.written).catch(() => undefined);
      this.queue.length = 0;
      this.queuedBytes = 0;
      this.queuedFrames = 0;
      this.onError(err as Error);
    } finally {
      this.draining = null;
    }
  }

  /** Account the items of a batch whose bytes (the first `upTo` of it) are in the file. */
  private complete(batch: QueueItem[], upTo: number): void {
    let pos = 0;
    for (const item of batch) {
      if (pos + item.buf.length > upTo) break;
      pos += item.buf.length;
      this.written += item.buf.length;
      this.queuedBytes -= item.buf.length;
      if (item.onWritten) {
        this.queuedFrames -= 1;
        item.onWritten();
      }
    }
  }

  /** Wait until everything queued so far is written. */
  async flush(): Promise<void> {
    while (this.draining) await this.draining;
  }

  async sync(): Promise<void> {
    if (this.fd === null || this.closed) return;
    try {
      await datasyncAsync(this.fd);
    } catch (err) {
      if (!this.failure) {
        this.failure = err as Error;
        this.onError(err as Error);
      }
    }
  }

  /** Flush, fsync and close. Safe to call after a failure and more than once. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush();
    this.closed = true;
    clearInterval(this.syncTimer);
    const fd = this.fd;
    this.fd = null;
    if (fd === null) return;
    await fsyncAsync(fd).catch(() => undefined);
    await closeAsync(fd);
  }
}
