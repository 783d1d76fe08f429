import type { AccessUnit } from './access-unit.ts';

/** An access unit placed on the capture clock. */
export interface CapturedFrame {
  au: AccessUnit;
  /** Capture time on CLOCK_MONOTONIC (or BOOTTIME for rpicam), microseconds. */
  captureUs: number;
  /** When rigcam received the last byte of the frame, CLOCK_MONOTONIC µs (for latency telemetry). */
  arrivalUs: number;
  /** Which run of the source process produced it (a restart starts a new segment). */
  run: number;
}
