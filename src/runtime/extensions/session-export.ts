import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../../log/logger.ts';
import type { RecordingSummary } from '../../recording/recording-file.ts';
import { insideRoot } from '../../recording/paths.ts';
import { SESSION_DOC, sessionDocumentParts } from '../../storage/session-export.ts';
import { replaceFileAsync } from '../../storage/durable-file.ts';
import type { Store } from '../../storage/store.ts';
import type { EventBus } from '../event-bus.ts';
import type { StatusMessage } from '../status.ts';
import type { Extension } from './extension.ts';

/**
 * At least this long between rewrites, at least COST_FACTOR × the last rewrite's duration, and long enough that the
 * rewrites write at most DOC_BYTES_PER_S on average.
 */
const MIN_INTERVAL_MS = 1000;
const COST_FACTOR = 20;
const DOC_BYTES_PER_S = 64 * 1024;

/**
 * Keeps `<root>/<session>/session.json` (storage/session-export) current: rewritten atomically (a temporary file
 * created exclusively, fsync, rename) after every trial and again once its recordings' checksums are in.
 * A rewrite reads and writes the whole session, so rewrites are coalesced: the next waits at least a second, at
 * least 20 × as long as the last one took, which keeps a long session's document under ~5 % of the box's time (a
 * 1000-trial session rewritten after every trial cost O(n²) work and tens of MiB of garbage strings; issue 17), and
 * long enough to average 64 KiB/s of writes at most (a 1000-trial document is ~2 MB: rewritten every second, 170 GB
 * a day on the SD card, and the garbage of its reads kept the service's heap growing with the session). The document is
 * streamed to the file one trial at a time, between turns of the event loop, never held whole; its fsyncs run on the
 * threadpool. Stopping (shutdown) writes what is pending at once.
 */
export class SessionExportExtension implements Extension {
  readonly name = 'session-export';
  private readonly dirty = new Set<number>();
  private scheduled = false;
  /** When the next rewrite may start (Date.now() ms). */
  private nextAt = 0;
  private stopping = false;
  /** Ends the wait before a pending rewrite (stop). */
  private wake: (() => void) | null = null;
  private queue: Promise<void> = Promise.resolve();
  private readonly onStopped = (s: RecordingSummary[]): void => {
    for (const r of s) this.markRecording(r.recordingId);
  };
  private readonly onStatus = (m: StatusMessage): void => {
    if (m.status === 'checksums' || m.status === 'remux_done') this.markRecording(m.data.recording_id);
    else if (m.status === 'session_stopped') this.mark(m.data.session_id);
  };

  constructor(private readonly o: { bus: EventBus; store: Store; root: string; log: Logger }) {}

  start(): void {
    this.o.bus.on('trial_stopped', this.onStopped);
    this.o.bus.on('status', this.onStatus);
  }

  async stop(): Promise<void> {
    this.o.bus.off('trial_stopped', this.onStopped);
    this.o.bus.off('status', this.onStatus);
    this.stopping = true;
    this.wake?.();
    await this.queue;
  }

  private markRecording(recordingId: number): void {
    try {
      const rec = this.o.store.recording(recordingId);
      const trial = rec?.trial_id != null ? this.o.store.trial(rec.trial_id) : undefined;
      if (trial) this.mark(trial.session_id);
    } catch (err) {
      this.o.log.warn({ recording: recordingId, err: (err as Error).message }, 'session.json: cannot find the session');
    }
  }

  private mark(sessionId: number): void {
    this.dirty.add(sessionId);
    if (this.scheduled) return;
    this.scheduled = true;
    // Coalesce the statuses of one trial (one per recording), and of trials closer together than the interval.
    this.queue = this.queue.then(async () => {
      if (!this.stopping)
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, Math.max(0, this.nextAt - Date.now()));
          this.wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
      this.wake = null;
      this.scheduled = false;
      const ids = [...this.dirty];
      this.dirty.clear();
      const t0 = Date.now();
      let bytes = 0;
      for (const id of ids) bytes += await this.write(id);
      this.nextAt = Date.now() + Math.max(MIN_INTERVAL_MS, COST_FACTOR * (Date.now() - t0), (1000 * bytes) / DOC_BYTES_PER_S);
    });
  }

  /** The session's document rewritten; the bytes written (0 when nothing was). */
  private async write(sessionId: number): Promise<number> {
    try {
      const s = this.o.store.session(sessionId);
      if (!s) return 0;
      const dir = insideRoot(this.o.root, s.name);
      if (!existsSync(dir)) return 0; // no trial has made its folder yet
      return await replaceFileAsync(path.join(dir, SESSION_DOC), sessionDocumentParts(this.o.store, this.o.root, s, 1));
    } catch (err) {
      this.o.log.error({ session: sessionId, err: (err as Error).message }, 'session.json not written');
      return 0;
    }
  }
}
