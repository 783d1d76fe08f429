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

/**
 * Where a recording's capture times come from, named on every recording: the kernel's V4L2 buffer timestamps
 * (CLOCK_MONOTONIC), libcamera's sensor timestamp, rpicam-vid's FrameWallClock moved onto CLOCK_MONOTONIC, or the
 * test source's made-up timeline (frame N at start + N periods).
 */
export type ClockSource = 'v4l2-monotonic' | 'rpicam-sensor' | 'rpicam-wallclock' | 'synthetic';

/**
 * For a source whose PTS count from its own first frame (rpicam-vid's libav output): the supervisor passes
 * every stderr line of the run to `originFromStderr`; the pipeline holds frames until it returns the capture
 * time of PTS 0, then places each frame at that origin + its PTS.
 */
export interface RelativePts {
  /** One stderr line of the current run in; the capture time (µs, on `clock`) of the frame with PTS 0 once announced, else null. */
  originFromStderr(line: string): { originUs: number; clockSource: ClockSource } | null;
  /** Per-frame stderr lines: neither logged nor kept in the error tail. */
  isChatter(line: string): boolean;
  /** Frames held while waiting for the origin; beyond this the run is given up (killed and restarted). */
  maxHeldFrames: number;
  /** What to report when the origin never came. */
  missingOriginMessage: string;
}

export interface SourceSpec {
  /** Source kind, for logs and status. */
  kind: 'test' | 'v4l2' | 'rpicam';
  /** Executable looked up on PATH (ffmpeg, rpicam-vid, ...). */
  command: string;
  args: string[];
  /** Which clock the PTS values carry. */
  clock: FrameClock;
  /** Where the capture times come from (for relative PTS: until the origin names it). */
  clockSource: ClockSource;
  /** Nominal frame rate, for gap detection. */
  fps: number;
  width: number;
  height: number;
  /** Encoder in use: 'copy', 'h264_v4l2m2m', 'libx264', 'rpicam-hw', 'rpicam-sw'. */
  encoder: string;
  /** Device node the source opens, if any (checked before start for a clear error). */
  device?: string;
  /** Set when the PTS are relative to the first frame and the origin comes on stderr. */
  relativePts?: RelativePts;
  /**
   * How long the run may write nothing at first before it counts as stalled; null: no limit (a sync camera writes
   * nothing until the other boxes' cameras are in step, however long that takes). Absent: the pipeline's default.
   */
  firstOutputMs?: number | null;
  /** How long the run may write nothing once it has written; absent: from the frame rate (a triggered camera: its camera timeout). */
  stallMs?: number | null;
  /** The child's whole environment; absent: rigcam's own. */
  env?: NodeJS.ProcessEnv;
}
