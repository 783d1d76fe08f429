import { openSync, writeSync, fsync, close as closeCb } from 'node:fs';
import { promisify } from 'node:util';
import type { FrameRow } from '../timing/frame-row.ts';
import { CSV_HEADER, csvLine, type CsvContext } from '../timing/csv-format.ts';
import { writeAsync } from './ts-file-writer.ts';

/** Appends rows in batches; the header goes first. Created synchronously, written asynchronously. */
export class TimingCsvWriter {
  private fd: number | null;
  private chain: Promise<void> = Promise.resolve();
  private failure: Error | null = null;

  constructor(
    readonly file: string,
    private readonly ctx: CsvContext,
  ) {
    this.fd = openSync(file, 'wx', 0o644);
    writeSync(this.fd, CSV_HEADER + '\n');
  }

  get error(): Error | null {
    return this.failure;
  }

  append(rows: readonly FrameRow[]): void {
    const fd = this.fd;
    if (!rows.length || fd === null || this.failure) return;
    const text = rows.map((r) => csvLine(this.ctx, r)).join('\n') + '\n';
    this.chain = this.chain.then(async () => {
      if (this.failure) return;
      try {
        await writeAsync(fd, text);
      } catch (err) {
        this.failure = err as Error;
      }
    });
  }

  async close(): Promise<void> {
    const fd = this.fd;
    this.fd = null;
    await this.chain;
    if (fd === null) return;
    await promisify(fsync)(fd).catch(() => undefined);
    await promisify(closeCb)(fd);
  }
}
