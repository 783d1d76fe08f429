/**
 * What it takes to run one camera source: a child process that writes MPEG-TS (H.264) to stdout
 * with capture timestamps as PTS. Every source kind (test, v4l2, rpicam) is one builder that
 * returns this; the supervisor runs any of them the same way.
 */
export type FrameClock =
  /** PTS = CLOCK_MONOTONIC of capture (V4L2 buffer timestamps with -copyts, or the test source). */
  | 'monotonic'
  /** PTS = CLOCK_BOOTTIME of start of exposure (libcamera SensorTimestamp). */
  | 'boottime';

export interface SourceSpec {
  /** Source kind, for logs and status. */
  kind: 'test' | 'v4l2' | 'rpicam';
  /** Executable looked up on PATH (ffmpeg, rpicam-vid, ...). */
  command: string;
  args: string[];
  /** Which clock the PTS values carry. */
  clock: FrameClock;
  /** Nominal frame rate, for gap detection. */
  fps: number;
  width: number;
  height: number;
  /** Encoder in use: 'copy', 'h264_v4l2m2m', 'libx264', 'rpicam-hw', 'rpicam-sw'. */
  encoder: string;
  /** Device node the source opens, if any (checked before start for a clear error). */
  device?: string;
}
