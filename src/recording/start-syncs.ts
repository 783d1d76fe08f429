import path from 'node:path';
import { monoNowUs } from '../clock.ts';
import { fsyncPath } from '../storage/durable-file.ts';

/**
 * The fsyncs a trial start owes before it may announce its files: every new file's data (the sidecar), every new
 * directory entry (.ts, .csv, .json) and the database rows that register them. A start used to run them one by one
 * on the event loop (four per camera, 8 for two cameras, each a journal commit on ext4: 10–60 ms on a busy SD card
 * or a shared VM disk). Collected here, they run at once on the threadpool, where the filesystem merges concurrent
 * fsyncs into one journal commit, and the event loop keeps serving frames meanwhile. Whoever opts in owns the
 * promise: nothing may be reported as existing before `run()` resolves.
 */
export class StartSyncs {
  private readonly files = new Set<string>();
  private readonly dirs = new Set<string>();
  private readonly late = new Map<string, () => Promise<void>>();
  private readonly work: Array<() => void> = [];
  private ran = false;
  /**
   * How long run() waited for the fsyncs after its own work was done, µs: the disk's share of the start. Work run
   * `meanwhile` is not in it (it is CPU the start spends either way).
   */
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
   * Event-loop work the start owes but that need not precede the fsyncs (a camera's pre-roll backlog into its new
   * file): run by `run()` right after the fsyncs are handed to the threadpool, so the CPU work and the disk wait
   * overlap instead of adding up. It runs in the same tick as the call to `run()`, before any other callback (a live
   * frame) can. A throw fails the start, after the fsyncs settle.
   */
  meanwhile(fn: () => void): void {
    this.check();
    this.work.push(fn);
  }

  get size(): number {
    return this.files.size + this.dirs.size + this.late.size;
  }

  private check(): void {
    if (this.ran) throw new Error('StartSyncs already ran: a later file would be announced unsynced');
  }

  /**
   * Run every fsync concurrently; rejects with the first failure once all have settled (a file's fsync failing is
   * a failed start). Directories some filesystems refuse to fsync (EINVAL, EISDIR) count as synced, as in syncDir.
   */
  async run(): Promise<void> {
    this.ran = true;
    const dirSync = (d: string): Promise<void> =>
      fsyncPath(d).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'EINVAL' && err.code !== 'EISDIR' && err.code !== 'ENOTSUP') throw err;
      });
    const pending = Promise.allSettled([...[...this.files].map(fsyncPath), ...[...this.dirs].map(dirSync), ...[...this.late.values()].map((fn) => fn())]);
    let workFailed: unknown = null;
    for (const fn of this.work) {
      try {
        fn();
      } catch (err) {
        workFailed ??= err;
      }
    }
    const doneWork = monoNowUs();
    const results = await pending;
    this.waitedUs = monoNowUs() - doneWork;
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')?.reason ?? workFailed;
    if (failed !== null) throw failed instanceof Error ? failed : new Error(String(failed));
  }
}
