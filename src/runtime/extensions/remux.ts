import path from 'node:path';
import type { RecordingSummary } from '../../recording/recording-file.ts';
import { remuxToMp4 } from '../../recording/remux.ts';
import type { Store } from '../../storage/store.ts';
import type { EventBus } from '../event-bus.ts';
import type { Extension } from './extension.ts';

/** After a trial, each complete recording is remuxed to .mp4 (frame count verified), one after another. */
export class RemuxExtension implements Extension {
  readonly name = 'remux';
  private readonly onStopped = (s: RecordingSummary[]): void => void this.remuxAll(s);

  constructor(private readonly o: { bus: EventBus; store: Store; root: string; keepTs: boolean }) {}

  start(): void {
    this.o.bus.on('trial_stopped', this.onStopped);
  }

  stop(): void {
    this.o.bus.off('trial_stopped', this.onStopped);
  }

  private async remuxAll(summaries: RecordingSummary[]): Promise<void> {
    for (const s of summaries) {
      if (s.state !== 'complete' || !s.frames) continue;
      const r = await remuxToMp4(s.path, s.frames, { keepTs: this.o.keepTs });
      if (r.mp4) this.o.store.setMp4(s.recordingId, path.relative(this.o.root, r.mp4), !r.tsDeleted);
      const data = { recording_id: s.recordingId, mp4: r.mp4 && path.relative(this.o.root, r.mp4), ts_deleted: r.tsDeleted, error: r.error };
      if (r.error) this.o.bus.report('warning', { message: `remux of recording ${s.recordingId} failed: ${r.error}`, ...data });
      else this.o.bus.report('remux_done', data);
    }
  }
}
