/**
 * The stop hold: how long a recording holds its newest frames before writing them. A stop or pause takes effect at
 * its trigger instant, but is only known later: a GPIO pulse after debounce and its minimum width, a serial line or
 * HTTP request after the command queue. Frames captured within the hold are not yet in the file when such a late
 * stop arrives, so they are dropped instead of taken back from a file a reader may already hold.
 */
export const STOP_HOLD_MARGIN_MS = 250;

export interface HoldInputs {
  recording: { stop_hold_ms: number | null };
  gpio: { inputs: ReadonlyArray<{ min_pulse_ms: number; debounce_ms: number; mode?: string }> };
}

/** The configured hold, or the longest GPIO input delay plus a margin for the command queue. */
export function stopHoldMs(c: HoldInputs): number {
  if (c.recording.stop_hold_ms !== null) return c.recording.stop_hold_ms;
  // Sync lines send no command: their debounce delays no stop.
  const gpio = Math.max(0, ...c.gpio.inputs.filter((i) => i.mode !== 'sync').map((i) => i.min_pulse_ms + i.debounce_ms));
  return gpio + STOP_HOLD_MARGIN_MS;
}
