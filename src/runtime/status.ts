/** A status event: what every transport (SSE, serial, module stdout, journal) carries. */
export interface StatusMessage {
  type: 'status';
  status: string;
  /** Unix time, seconds (float). */
  timestamp: number;
  /** CLOCK_MONOTONIC µs, on the frames' clock. */
  mono_us: number;
  camera_id?: string | null;
  command_id?: string | null;
  data: Record<string, unknown>;
}

export const STATUS_NAMES = [
  'ready',
  'device_ready',
  'device_error',
  'device_released',
  'recording_started',
  'recording_stopped',
  'recording_paused',
  'recording_resumed',
  'session_started',
  'session_stopped',
  'config_applied',
  'control_changed',
  'capabilities',
  'marker',
  'source_exited',
  'source_started',
  'segment_started',
  'telemetry',
  'error',
  'warning',
  'status_report',
] as const;
