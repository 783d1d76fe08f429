import type { EventBus } from '../../runtime/event-bus.ts';
import type { Extension } from '../../runtime/extensions/extension.ts';
import type { SerialTrigger } from './serial-trigger.ts';

/** The serial trigger as a box extension: runs from start to stop, its connection state reported as statuses. */
export class SerialExtension implements Extension {
  readonly name = 'serial';
  private readonly onConnected = (d: { path: string }): void => this.bus.report('serial_connected', d);
  private readonly onDisconnected = (d: { path: string; reason: string }): void => this.bus.report('serial_disconnected', d);
  private readonly onError = (d: { path: string; error: string }): void => this.bus.report('serial_error', d);

  constructor(
    private readonly bus: EventBus,
    private readonly serial: SerialTrigger,
  ) {}

  start(): void {
    this.serial.on('serial_connected', this.onConnected);
    this.serial.on('serial_disconnected', this.onDisconnected);
    this.serial.on('serial_error', this.onError);
    this.serial.start();
  }

  async stop(): Promise<void> {
    await this.serial.stop();
    this.serial.off('serial_connected', this.onConnected);
    this.serial.off('serial_disconnected', this.onDisconnected);
    this.serial.off('serial_error', this.onError);
  }
}
