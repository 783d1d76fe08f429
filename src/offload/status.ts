/** Where a recording stands in the offload (push or pull). */
export type OffloadRecordingState = 'pending' | 'copying' | 'verified' | 'failed';

export interface OffloadRecordingView {
  recording_id: number;
  path: string;
  state: OffloadRecordingState;
  /** Bytes of its files (as hashed at the source). */
  bytes: number;
  /** Why the last try failed (state failed), else null. */
  error: string | null;
  /** Bytes the last copy of a file actually sent (rsync --stats), when known: proves a resumed copy. */
  bytes_sent: number | null;
}

/** `offload` in /api/status and the `offload` status: push or pull, what waits, last success and error, stale. */
export interface OffloadStatus {
  mode: 'push' | 'pull';
  /** Push target (`rsync user@host:/path/box`), null for pull. */
  target: string | null;
  /** push: copying, waiting (to retry), paused (a trial records), idle. Pull: idle. */
  activity: 'idle' | 'copying' | 'waiting' | 'paused';
  pending_recordings: number;
  bytes_pending: number;
  /** ISO time of the last copy confirmed by checksum (push or pull), null when none yet. */
  last_success_at: string | null;
  last_error: { at: string; recording_id: number | null; message: string } | null;
  stale_after_hours: number;
  /** The stale-backup warning, null while backups keep up. */
  warning: string | null;
  /** Recordings not yet offloaded (oldest first, at most 100) and the last few verified. */
  recordings: OffloadRecordingView[];
}

/** `offload_telemetry`: the backup's health, sampled periodically (not journaled), for dashboards listening on SSE. */
export type OffloadTelemetry = Omit<OffloadStatus, 'recordings'> & {
  /** Whether the stale warning applies now (`warning` says why). */
  stale: boolean;
  /** Waiting recordings whose last copy or check failed (retried). */
  failed_recordings: number;
  /** The recording being copied now, or null. */
  copying_recording_id: number | null;
};

/** The periodic sample of an offload state (its per-recording list left out: counts stand for it). */
export function offloadTelemetry(s: OffloadStatus): OffloadTelemetry {
  const { recordings, ...rest } = s;
  return {
    ...rest,
    stale: s.warning !== null,
    failed_recordings: recordings.filter((r) => r.state === 'failed').length,
    copying_recording_id: recordings.find((r) => r.state === 'copying')?.recording_id ?? null,
  };
}
