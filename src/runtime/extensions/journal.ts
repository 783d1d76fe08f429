import type { Logger } from '../../log/logger.ts';
import type { Store } from '../../storage/store.ts';
import type { CommandRecord, EventBus } from '../event-bus.ts';
import type { StatusMessage } from '../status.ts';
import type { Extension } from './extension.ts';

/**
 * The event journal: every command (source, payload, result) and every status but telemetry and offload_telemetry
 * (sampled, not events) goes to the `events` table and the log. Subscribed before anything else, so a status is on disk before
 * any other listener sees it.
 */
export class JournalExtension implements Extension {
  readonly name = 'journal';
  private readonly onStatus = (m: StatusMessage): void => this.status(m);
  private readonly onCommand = (c: CommandRecord): void => this.command(c);

  private timer: NodeJS.Timeout | null = null;
  private pruning: Promise<number> | null = null;

  constructor(
    private readonly o: {
      bus: EventBus;
      store: Store;
      log: Logger;
      context: () => { sessionId: number | null; trialId: number | null };
      /** Journal retention bounds (config `journal`). */
      retention: { max_age_days: number; max_rows: number };
      /** How often retention runs (after once at start). */
      pruneEveryMs?: number;
    },
  ) {}

  start(): void {
    this.o.bus.prependListener('status', this.onStatus);
    this.o.bus.prependListener('command', this.onCommand);
    void this.prune();
    this.timer = setInterval(() => void this.prune(), this.o.pruneEveryMs ?? 3_600_000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.o.bus.off('status', this.onStatus);
    this.o.bus.off('command', this.onCommand);
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.pruning;
  }

  /**
   * Delete what the journal retention allows (Store.pruneJournal says what is kept), in small batches with the event
   * loop free between them; one run at a time. Resolves to the number of events deleted.
   */
  prune(): Promise<number> {
    this.pruning ??= (async () => {
      const beforeWallUs = (Date.now() - this.o.retention.max_age_days * 86_400_000) * 1000;
      let total = 0;
      try {
        for (let afterId = 0, more = true; more; ) {
          const r = this.o.store.pruneJournal({ beforeWallUs, maxRows: this.o.retention.max_rows, afterId, window: 5000 });
          total += r.deleted;
          ({ nextAfterId: afterId, more } = r);
          await new Promise((res) => setImmediate(res));
        }
      } catch (err) {
        this.o.log.warn({ err: (err as Error).message }, 'journal retention failed: retried later');
      }
      if (total) this.o.log.info({ deleted_events: total, ...this.o.retention }, 'journal retention');
      return total;
    })().finally(() => (this.pruning = null));
    return this.pruning;
  }

  private write(e: Parameters<Store['addEvent']>[0]): void {
    try {
      this.o.store.addEvent(e);
    } catch (err) {
      this.o.log.error({ err: (err as Error).message }, 'journal write failed');
    }
  }

  private status(m: StatusMessage): void {
    if (m.status === 'telemetry' || m.status === 'offload_telemetry') return;
    const cameraId = m.camera_id ?? null;
    this.write({ kind: 'status', name: m.status, cameraId, ...this.o.context(), monoUs: m.mono_us, payload: m.data });
    this.o.log.info({ status: m.status, camera: cameraId, ...m.data }, m.status);
  }

  private command(c: CommandRecord): void {
    const { sessionId, trialId } = this.o.context();
    this.write({ kind: 'command', name: c.name, source: c.source, monoUs: c.monoUs, sessionId, trialId, payload: c.payload, result: c.result });
  }
}
