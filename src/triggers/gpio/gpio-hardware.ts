import type { EventEmitter } from 'node:events';

/**
 * The narrow interface between the trigger logic and GPIO hardware; one adapter per kind
 * (libgpiod tools, sysfs).
 */

/** One edge as the pin saw it: `rising` is electrical (low to high), before any active-low. */
export interface EdgeEvent {
  line: number;
  rising: boolean;
  /** Kernel event time, CLOCK_MONOTONIC in microseconds (the clock of process.hrtime). */
  monoUs: number;
}

export type GpioFault =
  | 'tool_missing'
  | 'chip_missing'
  | 'line_invalid'
  | 'line_busy'
  | 'permission'
  | 'device_gone'
  | 'usage'
  | 'unsupported_version'
  | 'exited'
  | 'unknown';

export interface GpioStatus {
  /**
   * running: lines requested and watched or driven; restarting: failed, next try scheduled;
   * failed: failed, the next request tries again; stopped: by request.
   */
  state: 'starting' | 'running' | 'restarting' | 'failed' | 'stopped';
  /** What this is about, e.g. `gpiomon gpiochip0 17,27` or `gpioset gpiochip0 18`. */
  source: string;
  fault?: GpioFault;
  message?: string;
  /** Delay before the next try, when restarting. */
  retryInMs?: number;
}

export interface EdgeSourceEvents {
  edge: [EdgeEvent];
  status: [GpioStatus];
}

export interface EdgeSource extends EventEmitter<EdgeSourceEvents> {
  start(): void;
  stop(): Promise<void>;
}

export interface OutputLineEvents {
  status: [GpioStatus];
}

export interface OutputLine extends EventEmitter<OutputLineEvents> {
  /** Drive the line to its active (true) or inactive level; resolves once the line is driven. */
  set(active: boolean): Promise<void>;
  /** Release the line (it returns to its default state). */
  close(): Promise<void>;
}
