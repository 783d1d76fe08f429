import path from 'node:path';
import { monoNowUs } from '../clock.ts';
import { fsyncDir, fsyncPath } from '../storage/durable-file.ts';

/**
 * The fsyncs a trial start (or a new segment) owes before it may announce its files: every new file's data (the
 * sidecar), every new directory entry (.ts, .csv, .json) and the database rows that register them. A start used to
 * run them one by one on the event loop (four per camera, 8 for two cameras, each a journal commit on ext4: 10–60 ms
 * on a busy SD card or a shared VM disk). Collected here, they run at once on the threadpool, where the filesystem
 * merges concurrent fsyncs into one journal commit, and the event loop keeps serving frames meanwhile. Whoever opts
 * in owns the promise: nothing may be reported as existing before `run()` resolves. Work the announcement need not
 * wait for (the cameras' pre-roll) is queued with `afterAnnounce` and run by `announced()`.
 */
export class StartSyncs {
  private readonly files = new Set<string>();
  private readonly dirs = new Set<string>();
  private readonly late = new Map<string, () => Promise<void>>();
  private readonly after: Array<() => void> = [];
  private ran = false;
  /** How long run() waited for the fsyncs, µs: the disk's share of the start. */
  waitedUs: number | null = null;

  /** A file whose data must be on disk. */
  file(p: string): void {
    this.check();
    this.files.add(p);
  }

  /** The directory holding a new entry (created or renamed) that must survive a power cut. */
  entryOf(p: string): void {
    this.check();
    this.dirs.add(path.dirname(p));
  }

  /** Another durable step (the database's WAL), run once per key with the others. */
  also(key: string, fn: () => Promise<void>): void {
    this.check();
    if (!this.late.has(key)) this.late.set(key, fn);
  }

  /**
   * Work the start owes but that its announcement need not wait for: writing a camera's pre-roll backlog (1–2 s of
   * frames copied into the new file, with their timing SEI and rows: CPU, and garbage, on the event loop). Run by
   * `announced()`, never if the start fails. The work must keep its own order against what arrives meanwhile (the
   * recorder queues the backlog at once and only defers writing it) and handle its own errors.
   */
  afterAnnounce(fn: () => void): void {
    this.check();
    this.after.push(fn);
  }

  /**
   * The start was announced: its deferred work runs on the next turn of the event loop, after the command's own
   * reply (an HTTP response, a serial acknowledgement), which is sent from the promise chain the start resolves.
   */
  announced(): void {
    const fns = this.after.splice(0);
    if (fns.length) setImmediate(() => fns.forEach((fn) => fn()));
  }

  get size(): number {
    return this.files.size + this.dirs.size + this.late.size;
  }

  private check(): void {
    if (this.ran) throw new Error('StartSyncs already ran: a later file would be announced unsynced');
  }

  /**
   * Run every fsync concurrently; rejects with the first failure once all have settled (a file's fsync failing is
   * a failed start); a directory the filesystem refuses to fsync counts as synced (fsyncDir).
   */
  async run(): Promise<void> {
    this.ran = true;
    const t0 = monoNowUs();
    const results = await Promise.allSettled([...[...this.files].map(fsyncPath), ...[...this.dirs].map(fsyncDir), ...[...this.late.values()].map((fn) => fn())]);
    this.waitedUs = monoNowUs() - t0;
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason instanceof Error ? failed.reason : new Error(String(failed.reason));
  }
}
