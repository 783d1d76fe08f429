import type { DiskLevel, DiskStatus } from '../disk/disk-guard.ts';
import type { RpicamSyncState } from '../sources/rpicam-source.ts';
import type { OffloadStatus, OffloadTelemetry } from '../offload/status.ts';
import type { ChildProblem as SourceProblem } from '../supervise/child-supervisor.ts';
import type { GpioControllerStatus } from '../triggers/gpio/gpio-trigger-controller.ts';
import type { Capabilities, DeviceReady } from './camera-runtime.ts';
import type { CommandSource } from './command-types.ts';
import type { ErrorCode } from './errors.ts';

/** A recording of a trial as the stop reports it (paths relative to the recordings root). */
export type StoppedRecording = {
  recording_id: number;
  camera_id?: string;
  path: string;
  csv?: string;
  frames: number;
  dropped: number;
  trigger_frame_index: number | null;
  duration_s: number;
  state: 'complete' | 'interrupted';
  reason?: string | null;
  /** Where the capture times come from: v4l2-monotonic, rpicam-sensor, rpicam-wallclock, synthetic. */
  clock_source: string | null;
  /** Video obtained before the trigger, seconds. */
  preroll_s: number;
  /** First frame more than a frame period after the trigger: the gap in µs; null when on time. */
  late_start_us: number | null;
};

export type TrialRef = { session: string; trial: number; trial_id: number };

export type CameraTelemetry = {
  camera_id: string;
  capture_fps: number;
  record_fps: number | null;
  queue_depth: { bytes: number; frames: number };
  frames_recorded: number | null;
  frames_dropped: number | null;
  latency_ms: number | null;
  state: string;
  disk_free_bytes: number | null;
  disk_minutes_left: number | null;
};

export type RemuxResult = { recording_id: number; mp4: string | null; ts_deleted: boolean; error: string | null | undefined };

/** The `data` of every status, by status name: what SSE, serial, module stdout and the journal carry. */
export type StatusDataMap = {
  ready: { cameras: string[]; recordings_root: string };
  device_ready: DeviceReady & { reassigned?: boolean };
  device_error: {
    camera_id: string;
    error: string;
    message: string;
    unplugged?: boolean;
    recordings?: Array<{ recording_id: number; path: string; frames: number; state: 'complete' | 'interrupted' }>;
  };
  device_released: { camera_id: string; device_id: string; port_released: boolean };
  recording_started: TrialRef & {
    session_id: number;
    label: string;
    trigger_source: CommandSource;
    trigger_mono_us: number;
    recordings: Array<{ camera_id: string; recording_id: number; path: string }>;
  };
  recording_stopped: TrialRef & { state: 'complete' | 'interrupted'; reason: string | null; stop_mono_us: number; recordings: StoppedRecording[] };
  recording_paused: TrialRef & { pause_mono_us: number };
  recording_resumed: TrialRef & { resume_mono_us: number };
  session_started: { session: string; session_id: number; metadata: unknown };
  session_stopped: { session: string; session_id: number; trial_stopped: boolean };
  config_applied: DeviceReady & { restarted: boolean; controls?: Record<string, number | string>; not_applied?: Record<string, string> };
  /** value: a number, or a CSI control's word / "r,b" gains; persisted: kept in <data_dir>/camera-controls.json. */
  control_changed: { camera_id: string; control: string; value: number | string; persisted: boolean };
  /** Controls applied at a source start (config + remembered), read back; `errors` name each control not as wanted. */
  controls_applied: { camera_id: string; trigger: 'start' | 'restart'; applied: Record<string, number>; errors: string[] };
  capabilities: { camera_id: string; capabilities: Capabilities };
  marker: { marker_id: number; label: string; mono_us: number; source: CommandSource; trial: number | null; session: string | null };
  source_exited: { camera_id: string; problem: SourceProblem; message: string; code: number | null; signal: string | null; restart_in_ms: number | null };
  source_started: { camera_id: string; run: number };
  segment_started: { camera_id: string; segment: number; recording_id: number; gap_us: number | null };
  telemetry: CameraTelemetry;
  /** Backup health every telemetry.offload_interval_ms (not journaled, like telemetry). */
  offload_telemetry: OffloadTelemetry;
  error: { command: string | null; code: ErrorCode; error: string; message: string; recoverable: boolean; camera_id?: string };
  warning: { message: string; disk?: DiskStatus; offload?: OffloadStatus } & Partial<RemuxResult>;
  disk: DiskStatus & { previous_level: DiskLevel };
  retention: { deleted_recordings: number[] };
  /** Offload progress (push copy started, verified, failed; the stale warning): the whole offload state. */
  offload: OffloadStatus & { recording_id: number | null; event: 'copying' | 'verified' | 'failed' | 'interrupted' | 'stale' };
  remux_done: RemuxResult;
  /** A recording's files were hashed (SHA-256, paths relative to the recordings root); `missing`: files that could not be. */
  checksums: { recording_id: number; files: Array<{ kind: string; path: string; bytes: number; sha256: string }>; missing: string[] };
  gpio_status: GpioControllerStatus;
  serial_connected: { path: string };
  serial_disconnected: { path: string; reason: string };
  serial_error: { path: string; error: string };
  // Written by module mode only (the host's framing).
  device_ack: { camera_stable_id: unknown; camera_dev_path: unknown };
  device_unassigned: { device_id: string; port_released: boolean };
  status_report: BoxStatus;
  quitting: Record<string, never>;
};

export type StatusName = keyof StatusDataMap;

export type StatusOf<K extends StatusName> = {
  type: 'status';
  status: K;
  /** Unix time, seconds (float). */
  timestamp: number;
  /** CLOCK_MONOTONIC µs, on the frames' clock. */
  mono_us: number;
  camera_id?: string | null;
  command_id?: string | null;
  data: StatusDataMap[K];
};

/** A status event: a union discriminated by `status`, so `data` is typed once the name is checked. */
export type StatusMessage = { [K in StatusName]: StatusOf<K> }[StatusName];

export type CameraStatus = DeviceReady & {
  state: string;
  capture_fps: number;
  latency_ms: number | null;
  recording: boolean;
  recorder_state: string;
  frames_recorded: number | null;
  frames_dropped: number | null;
  queue_depth: { bytes: number; frames: number };
  source_restarts: number;
  at_mono_us: number;
  armed: boolean;
  last_error: string | null;
  /** A CSI sync camera's rpicam-vid --sync progress (absent or null: not a sync camera). */
  sync?: RpicamSyncState | null;
};

/** `get_status` / `/api/status`: the whole box at a glance. */
export type BoxStatus = {
  recording: boolean;
  paused: boolean;
  session: { id: number; name: string } | null;
  trial: { id: number; number: number; label: string; state: 'recording' | 'paused' | 'stopping'; cameras: string[]; trigger_source: string } | null;
  cameras: CameraStatus[];
  disk: BoxDiskStatus | null;
  offload: OffloadStatus;
};

/** The disk guard's status as the box reports it: why a trial start would be refused now, and postponed recovery. */
export type BoxDiskStatus = DiskStatus & { start_refused: string | null; recovery_pending: boolean };
