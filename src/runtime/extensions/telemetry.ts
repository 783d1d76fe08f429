import type { CameraRegistry } from '../camera-registry.ts';
import { monoNowUs } from '../command-types.ts';
import type { EventBus } from '../event-bus.ts';
import type { DiskStatus } from '../../disk/disk-guard.ts';
import { offloadTelemetry, type OffloadStatus } from '../../offload/status.ts';
import type { Extension } from './extension.ts';

/**
 * `telemetry` per assigned camera every interval: measured capture and record fps, queue depth, disk left; and
 * `offload_telemetry` for the box every offload interval: the backup's health (what waits, last success and error,
 * stale), so a dashboard on SSE sees a backup that stopped working without polling /api/status.
 */
export class TelemetryExtension implements Extension {
  readonly name = 'telemetry';
  private timer: NodeJS.Timeout | null = null;
  private offloadTimer: NodeJS.Timeout | null = null;
  private readonly lastFrames = new Map<string, { frames: number; at: number }>();

  constructor(
    private readonly o: {
      bus: EventBus;
      cameras: CameraRegistry;
      intervalMs: number;
      disk: () => DiskStatus | null;
      offload?: { intervalMs: number; status: () => OffloadStatus };
    },
  ) {}

  start(): void {
    this.timer = setInterval(() => this.emit(), this.o.intervalMs);
    this.timer.unref();
    const offload = this.o.offload;
    if (offload) {
      this.offloadTimer = setInterval(() => this.emitOffload(offload.status), offload.intervalMs);
      this.offloadTimer.unref();
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.offloadTimer) clearInterval(this.offloadTimer);
    this.timer = this.offloadTimer = null;
  }

  private emitOffload(status: () => OffloadStatus): void {
    let s: OffloadStatus;
    try {
      s = status();
    } catch {
      return; // the database unreadable for a moment (it is reported where it is written): the next sample says it
    }
    this.o.bus.report('offload_telemetry', offloadTelemetry(s));
  }

  private emit(): void {
    const now = monoNowUs();
    const disk = this.o.disk();
    for (const c of this.o.cameras.list()) {
      if (c.state === 'unassigned') continue;
      const t = c.telemetry();
      const cur = c.current;
      let recordFps: number | null = null;
      if (cur) {
        const prev = this.lastFrames.get(c.id);
        if (prev && prev.frames <= cur.frames) recordFps = Math.round(((cur.frames - prev.frames) * 1e7) / (now - prev.at)) / 10;
        this.lastFrames.set(c.id, { frames: cur.frames, at: now });
      } else this.lastFrames.delete(c.id);
      this.o.bus.report(
        'telemetry',
        {
          camera_id: c.id,
          capture_fps: t.capture_fps,
          record_fps: recordFps,
          queue_depth: t.queue_depth,
          frames_recorded: cur?.frames ?? null,
          frames_dropped: cur?.dropped ?? null,
          latency_ms: t.latency_ms,
          state: c.state,
          disk_free_bytes: disk?.free_bytes ?? null,
          disk_minutes_left: disk?.minutes_left ?? null,
        },
        c.id,
      );
    }
  }
}
