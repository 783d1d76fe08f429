import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../../log/logger.ts';
import type { RecordingSummary } from '../../recording/recording-file.ts';
import { insideRoot } from '../../recording/paths.ts';
import { SESSION_DOC, sessionDocumentText } from '../../storage/session-export.ts';
import { replaceFile } from '../../storage/sidecar.ts';
import type { Store } from '../../storage/store.ts';
import type { EventBus } from '../event-bus.ts';
import type { StatusMessage } from '../status.ts';
import type { Extension } from './extension.ts';

/**
 * Keeps `<root>/<session>/session.json` (storage/session-export) current: rewritten atomically (a temporary file
 * created exclusively, fsync, rename) after every trial and again once its recordings' checksums are in.
 * Writes for one session are coalesced and run one at a time.
 */
export class SessionExportExtension implements Extension {
  readonly name = 'session-export';
  private readonly dirty = new Set<number>();
  private scheduled = false;
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
    // Coalesce the statuses of one trial (one per recording) into one write.
    setImmediate(() => {
      this.scheduled = false;
      const ids = [...this.dirty];
      this.dirty.clear();
      this.queue = this.queue.then(async () => {
        for (const id of ids) await this.write(id);
      });
    });
  }

  private async write(sessionId: number): Promise<void> {
    try {
      const s = this.o.store.session(sessionId);
      if (!s) return;
      const dir = insideRoot(this.o.root, s.name);
      if (!existsSync(dir)) return; // no trial has made its folder yet
      // Built a few trials at a time (a long session has thousands of markers); the small write itself is synchronous.
      replaceFile(path.join(dir, SESSION_DOC), await sessionDocumentText(this.o.store, this.o.root, s));
    } catch (err) {
      this.o.log.error({ session: sessionId, err: (err as Error).message }, 'session.json not written');
    }
  }
}
