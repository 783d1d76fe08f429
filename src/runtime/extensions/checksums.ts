import type { Logger } from '../../log/logger.ts';
import type { RecordingSummary } from '../../recording/recording-file.ts';
import { lackingChecksums, syncChecksums } from '../../storage/checksums.ts';
import type { Store } from '../../storage/store.ts';
import type { EventBus } from '../event-bus.ts';
import type { StatusMessage } from '../status.ts';
import type { Extension } from './extension.ts';

/**
 * Checksums at the source: when a trial's recordings close (video, CSV, sidecar) and when a recording's .mp4 is
 * made, their SHA-256 are computed, one recording after another, streamed (see storage/checksums), and stored;
 * at start every finished recording still lacking them (adopted, rebuilt, or closed just before a crash) is hashed
 * too. Each recording hashed is reported as a `checksums` status.
 */
export class ChecksumExtension implements Extension {
  readonly name = 'checksums';
  private queue: Promise<void> = Promise.resolve();
  private readonly pending = new Set<number>();
  private readonly abort = new AbortController();
  private readonly onStopped = (s: RecordingSummary[]): void => {
    for (const r of s) this.enqueue(r.recordingId);
  };
  private readonly onStatus = (m: StatusMessage): void => {
    if (m.status === 'remux_done') this.enqueue(m.data.recording_id);
  };

  constructor(private readonly o: { bus: EventBus; store: Store; root: string; log: Logger }) {}

  start(): void {
    this.o.bus.on('trial_stopped', this.onStopped);
    this.o.bus.on('status', this.onStatus);
    // Backfill after the trial hooks are on: a trial stopping meanwhile is queued too, never missed.
    this.queue = this.queue.then(() => this.backfill());
  }

  /**
   * Queue every finished recording lacking a checksum, 500 at a time with a turn of the event loop between pages:
   * read in one block, a box holding 130 000 recordings held the loop 4.2 s with the cameras already capturing, and
   * its rows took 243 MiB of heap.
   */
  private async backfill(): Promise<void> {
    try {
      for (const page of this.o.store.finishedPages(500)) {
        if (this.abort.signal.aborted) return;
        for (const id of lackingChecksums(this.o.store, page)) this.enqueue(id);
        await new Promise((resolve) => setImmediate(resolve));
      }
    } catch (err) {
      this.o.log.error({ err: (err as Error).message }, 'checksum backfill: cannot list recordings');
    }
  }

  /** Resolves when every recording queued so far is hashed, those the backfill queues too (tests, shutdown). */
  async idle(): Promise<void> {
    for (let q = this.queue; ; q = this.queue) {
      await q;
      if (q === this.queue) return;
    }
  }

  async stop(): Promise<void> {
    this.o.bus.off('trial_stopped', this.onStopped);
    this.o.bus.off('status', this.onStatus);
    // What is not hashed now is hashed by the next start's backfill; a shutdown does not wait for gigabytes.
    this.abort.abort();
    await this.idle();
  }

  private enqueue(id: number): void {
    if (this.pending.has(id) || this.abort.signal.aborted) return;
    this.pending.add(id);
    this.queue = this.queue.then(() => this.run(id));
  }

  private async run(id: number): Promise<void> {
    this.pending.delete(id);
    if (this.abort.signal.aborted) return;
    try {
      const r = await syncChecksums(this.o.store, this.o.root, id, this.abort.signal);
      if (this.abort.signal.aborted) return;
      if (r.missing.length) this.o.log.warn({ recording: id, missing: r.missing }, 'checksums: files missing');
      this.o.bus.report('checksums', {
        recording_id: id,
        files: r.files.map((f) => ({ kind: f.kind, path: f.path, bytes: f.bytes, sha256: f.sha256 })),
        missing: r.missing,
      });
    } catch (err) {
      this.o.log.error({ recording: id, err: (err as Error).message }, 'checksums failed');
    }
  }
}
