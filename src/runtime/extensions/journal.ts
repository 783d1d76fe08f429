import type { Logger } from '../../log/logger.ts';
import type { Store } from '../../storage/store.ts';
import type { CommandRecord, EventBus } from '../event-bus.ts';
import type { StatusMessage } from '../status.ts';
import type { Extension } from './extension.ts';

/**
 * The event journal: every command (source, payload, result) and every status but telemetry (sampled, not an
 * event) goes to the `events` table and the log. Subscribed before anything else, so a status is on disk before
 * any other listener sees it.
 */
export class JournalExtension implements Extension {
  readonly name = 'journal';
  private readonly onStatus = (m: StatusMessage): void => this.status(m);
  private readonly onCommand = (c: CommandRecord): void => this.command(c);

  constructor(
    private readonly o: { bus: EventBus; store: Store; log: Logger; context: () => { sessionId: number | null; trialId: number | null } },
  ) {}

  start(): void {
    this.o.bus.prependListener('status', this.onStatus);
    this.o.bus.prependListener('command', this.onCommand);
  }

  stop(): void {
    this.o.bus.off('status', this.onStatus);
    this.o.bus.off('command', this.onCommand);
  }

  private write(e: Parameters<Store['addEvent']>[0]): void {
    try {
      this.o.store.addEvent(e);
    } catch (err) {
      this.o.log.error({ err: (err as Error).message }, 'journal write failed');
    }
  }

  private status(m: StatusMessage): void {
    if (m.status === 'telemetry') return;
    const cameraId = m.camera_id ?? null;
    this.write({ kind: 'status', name: m.status, cameraId, ...this.o.context(), monoUs: m.mono_us, payload: m.data });
    this.o.log.info({ status: m.status, camera: cameraId, ...m.data }, m.status);
  }

  private command(c: CommandRecord): void {
    const { sessionId, trialId } = this.o.context();
    this.write({ kind: 'command', name: c.name, source: c.source, monoUs: c.monoUs, sessionId, trialId, payload: c.payload, result: c.result });
  }
}
