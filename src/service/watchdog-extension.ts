import type { CameraRuntime } from '../runtime/camera-runtime.ts';
import { monoNowUs } from '../runtime/command-types.ts';
import type { Extension } from '../runtime/extensions/extension.ts';
import { startWatchdogPings } from './sd-notify.ts';

/** A ready camera is healthy while its latest frame is younger than this. */
const STALE_US = 10_000_000;

/**
 * systemd's watchdog, fed only while every camera that should deliver video does. A camera whose device is gone is
 * reported, not restarted by systemd: restarting rigcam would not bring it back.
 */
export class WatchdogExtension implements Extension {
  readonly name = 'watchdog';
  private stopPings: (() => void) | null = null;

  constructor(private readonly cameras: () => Iterable<CameraRuntime>) {}

  healthy(): boolean {
    for (const c of this.cameras()) {
      if (c.state !== 'ready') continue;
      const last = c.stats()?.lastCaptureUs ?? null;
      if (last === null || monoNowUs() - last >= STALE_US) return false;
    }
    return true;
  }

  start(): void {
    this.stopPings ??= startWatchdogPings(() => this.healthy());
  }

  stop(): void {
    this.stopPings?.();
    this.stopPings = null;
  }
}
