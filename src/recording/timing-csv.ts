import { openSync, writeSync, fsync, fdatasync, ftruncate, close as closeCb } from 'node:fs';
import { promisify } from 'node:util';
import type { FrameRow } from '../timing/frame-row.ts';
import { CSV_HEADER, csvLine, type CsvContext } from '../timing/csv-format.ts';
import { writeAsync } from './ts-file-writer.ts';

const truncateAsync = promisify(ftruncate);

/**
 * Appends rows in batches; the header goes first. Created synchronously, written asynchronously. A row counts as
 * written only once its whole line is in the file: a short write is continued, a failed one (disk full) is cut
 * back to the last whole line and its text kept for the next append or the close to retry.
 */
export class TimingCsvWriter {
  private fd: number | null;
  private chain: Promise<unknown> = Promise.resolve();
  private failure: Error | null = null;
  private pending: string[] = [];
  private pendingRows = 0;
  private bytes: number;
  private rows = 0;

  constructor(
    readonly file: string,
    private readonly ctx: CsvContext,
  ) {
    this.fd = openSync(file, 'wx', 0o644);
    const header = Buffer.from(CSV_HEADER + '\n');
    writeSync(this.fd, header);
    this.bytes = header.length;
  }

  /** The last write error, cleared by a later successful write. */
  get error(): Error | null {
    return this.failure;
  }

  /** Rows whose whole line is in the file. */
  get rowsWritten(): number {
    return this.rows;
  }

  /** fdatasync what has been appended so far (with the video's periodic sync: the two lose the same moments). */
  async sync(): Promise<void> {
    const fd = this.fd;
    if (fd === null) return;
    const run = this.chain.then(async () => {
      if (this.fd === null) return;
      await promisify(fdatasync)(fd).catch((err: Error) => {
        this.failure = err;
      });
    });
    this.chain = run;
    await run;
  }

  append(rows: readonly FrameRow[]): void {
    if (!rows.length || this.fd === null) return;
    this.pending.push(rows.map((r) => csvLine(this.ctx, r)).join('\n') + '\n');
    this.pendingRows += rows.length;
    this.chain = this.chain.then(() => this.writePending());
  }

  private async writePending(): Promise<boolean> {
    const fd = this.fd;
    if (fd === null || !this.pending.length) return this.pending.length === 0;
    const buf = Buffer.from(this.pending.join(''));
    const rows = this.pendingRows;
    this.pending = [];
    this.pendingRows = 0;
    let off = 0;
    try {
      while (off < buf.length) off += await writeAsync(fd, buf, off, buf.length - off, this.bytes + off);
      this.bytes += buf.length;
      this.rows += rows;
      this.failure = null;
      return true;
    } catch (err) {
      this.failure = err as Error;
      // No torn line stays in the file: the next try rewrites the whole batch at the same offset.
      await truncateAsync(fd, this.bytes).catch(() => undefined);
      this.pending.unshift(buf.toString('utf8'));
      this.pendingRows += rows;
      return false;
    }
  }

  /** Write what is still pending (one more try), fsync and close. */
  async close(): Promise<void> {
    await this.chain;
    if (this.pending.length) await this.writePending();
    const fd = this.fd;
    this.fd = null;
    if (fd === null) return;
    await promisify(fsync)(fd).catch(() => undefined);
    await promisify(closeCb)(fd);
  }
}
