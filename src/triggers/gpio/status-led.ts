import type { Logger } from '../../log/logger.ts';
import type { OutputLine } from './gpio-hardware.ts';

export type LedPattern = 'off' | 'ready' | 'error';

/** A status LED: steady when ready, blinking on error, dark otherwise. */
export class StatusLed {
  private pattern?: LedPattern;
  private blinkTimer?: NodeJS.Timeout;
  private lit = false;
  private busy = false;
  /** After a failed drive, blink ticks rest for a while instead of spawning failures 4 times a second. */
  private restUntil = 0;

  constructor(
    private readonly line: OutputLine,
    private readonly logger: Logger,
    private readonly blinkMs = 250,
  ) {}

  show(pattern: LedPattern): void {
    if (pattern === this.pattern) return;
    this.pattern = pattern;
    clearInterval(this.blinkTimer);
    this.blinkTimer = undefined;
    if (pattern === 'error') {
      this.drive(true);
      this.blinkTimer = setInterval(() => this.drive(!this.lit), this.blinkMs);
    } else {
      this.drive(pattern === 'ready');
    }
  }

  async close(): Promise<void> {
    clearInterval(this.blinkTimer);
    this.blinkTimer = undefined;
    await this.line.close();
  }

  private drive(on: boolean): void {
    // A blink tick that finds the previous change still under way is skipped, not queued.
    if (this.blinkTimer && (this.busy || Date.now() < this.restUntil)) return;
    this.busy = true;
    this.lit = on;
    this.line
      .set(on)
      .catch((err: unknown) => {
        this.restUntil = Date.now() + 5000;
        this.logger.warn({ err }, 'status LED not driven');
      })
      .finally(() => {
        this.busy = false;
      });
  }
}
