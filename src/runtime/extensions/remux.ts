import path from 'node:path';
import type { RecordingSummary } from '../../recording/recording-file.ts';
import { remuxToMp4 } from '../../recording/remux.ts';
import type { Store } from '../../storage/store.ts';
import type { EventBus } from '../event-bus.ts';
import type { Extension } from './extension.ts';

/**
 * After a trial, each complete recording is remuxed to .mp4 (frame count verified): once per recording, one after
 * another; stopping the box waits for the queue.
 */
export class RemuxExtension implements Extension {
  readonly name = 'remux';
  private readonly onStopped = (s: RecordingSummary[]): void => {
    for (const r of s) this.enqueue(r);
  };
  /** Recordings queued or done: a recording is remuxed once, whoever asks again. */
  private readonly seen = new Set<number>();
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly o: { bus: EventBus; store: Store; root: string; keepTs: boolean }) {}

  start(): void {
    this.o.bus.on('trial_stopped', this.onStopped);
  }

  async stop(): Promise<void> {
    this.o.bus.off('trial_stopped', this.onStopped);
    await this.queue;
  }

  private enqueue(s: RecordingSummary): void {
    if (s.state !== 'complete' || !s.frames || this.seen.has(s.recordingId)) return;
    this.seen.add(s.recordingId);
    this.queue = this.queue.then(() => this.remux(s));
  }

  private async remux(s: RecordingSummary): Promise<void> {
    const r = await remuxToMp4(s.path, s.frames, { keepTs: this.o.keepTs });
    const mp4 = r.mp4 && path.relative(this.o.root, r.mp4);
    try {
      if (mp4) this.o.store.setMp4(s.recordingId, mp4, !r.tsDeleted);
    } catch (err) {
      r.error = `mp4 written but not registered: ${(err as Error).message}`;
    }
    const data = { recording_id: s.recordingId, mp4, ts_deleted: r.tsDeleted, error: r.error };
    if (r.error) this.o.bus.report('warning', { message: `remux of recording ${s.recordingId} failed: ${r.error}`, ...data });
    else this.o.bus.report('remux_done', data);
  }
}
