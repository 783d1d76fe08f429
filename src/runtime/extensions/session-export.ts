import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../../log/logger.ts';
import type { RecordingSummary } from '../../recording/recording-file.ts';
import { insideRoot } from '../../recording/paths.ts';
import { SESSION_DOC, sessionDocumentText } from '../../storage/session-export.ts';
import { replaceFileAsync } from '../../storage/sidecar.ts';
import type { Store } from '../../storage/store.ts';
import type { EventBus } from '../event-bus.ts';
import type { StatusMessage } from '../status.ts';
import type { Extension } from './extension.ts';

/** At most one rewrite per this interval: a rewrite reads the whole session, so trials seconds apart must not pay one each. */
const MIN_INTERVAL_MS = 1000;

/**
 * Keeps `<root>/<session>/session.json` (storage/session-export) current: rewritten atomically (a temporary file
 * created exclusively, fsync, rename) after every trial and again once its recordings' checksums are in.
 * Writes are coalesced (at most one a second) and run one at a time. Everything a rewrite does on the event loop
 * comes in slices of one trial, and its fsyncs run on the threadpool: a trigger arriving meanwhile is stamped on
 * the loop, and a 500-trial session's document is hundreds of ms of work.
 */
export class SessionExportExtension implements Extension {
  readonly name = 'session-export';
  private readonly dirty = new Set<number>();
  private scheduled = false;
  private lastWrite = 0;
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
    // Coalesce the statuses of one trial (one per recording), and of trials less than MIN_INTERVAL_MS apart.
    this.queue = this.queue.then(async () => {
      await new Promise((r) => setTimeout(r, Math.max(0, this.lastWrite + MIN_INTERVAL_MS - Date.now())));
      this.scheduled = false;
      const ids = [...this.dirty];
      this.dirty.clear();
      for (const id of ids) await this.write(id);
      this.lastWrite = Date.now();
    });
  }

  private async write(sessionId: number): Promise<void> {
    try {
      const s = this.o.store.session(sessionId);
      if (!s) return;
      const dir = insideRoot(this.o.root, s.name);
      if (!existsSync(dir)) return; // no trial has made its folder yet
      await replaceFileAsync(path.join(dir, SESSION_DOC), await sessionDocumentText(this.o.store, this.o.root, s, 1));
    } catch (err) {
      this.o.log.error({ session: sessionId, err: (err as Error).message }, 'session.json not written');
    }
  }
}
