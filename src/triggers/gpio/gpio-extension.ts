import type { EventBus } from '../../runtime/event-bus.ts';
import type { Extension } from '../../runtime/extensions/extension.ts';
import type { GpioControllerStatus, GpioTriggerController } from './gpio-trigger-controller.ts';

/**
 * The GPIO lines as a box extension: inputs watched from start to stop (their commands go through handleCommand
 * like any transport's), the `recording` output held active while a trial records, the controller's state
 * reported as `gpio_status` (its status LED follows the controller's own state).
 */
export class GpioExtension implements Extension {
  readonly name = 'gpio';
  private readonly onStatus = (s: GpioControllerStatus): void => this.bus.report('gpio_status', s);
  private readonly onRecording = (on: boolean): void => void this.gpio.setRecording(on);

  constructor(
    private readonly bus: EventBus,
    private readonly gpio: GpioTriggerController,
  ) {}

  start(): void {
    this.gpio.on('status', this.onStatus);
    this.bus.on('recording', this.onRecording);
    this.gpio.start();
  }

  async stop(): Promise<void> {
    this.bus.off('recording', this.onRecording);
    await this.gpio.stop();
    this.gpio.off('status', this.onStatus);
  }
}
