/** One row of frame timing, as stored in SQLite and written to the CSV sidecar. */
export interface FrameRow {
  recordingId: number;
  /** 1-based position of the frame in the file. */
  index: number;
  /** Capture time, CLOCK_MONOTONIC (or BOOTTIME, see the recording's clock), µs. */
  captureUs: number;
  /** Capture time as wall-clock µs since the epoch, from the recording's monotonic↔wall pair. */
  wallUs: number;
  /** Time since the previous frame in the file, µs (null for the first). */
  intervalUs: number | null;
  /** Frames the camera should have delivered in that interval but did not (from the nominal rate). */
  missingBefore: number;
  /** The frame's PTS exactly as it is in the file (90 kHz, 33 bits). */
  pts: number;
  keyframe: boolean;
  bytes: number;
  /**
   * Comma-free tags: `preroll` (captured before the trigger), `paused` (written only to keep the video
   * decodable during a pause), `resume` (first frame after a resume; its gap is a pause, not a drop),
   * `segment` (first frame after a source restart), `discontinuity` (the stream lost packets here).
   */
  flags: string;
}

/**
 * Computes the timing rows of one recording from the capture times, on the fly.
 * A gap is counted as missing frames only when it is not explained by a pause or restart.
 */
export class FrameTimer {
  private prevCaptureUs: number | null = null;
  private count = 0;
  private dropped = 0;

  constructor(
    private readonly recordingId: number,
    private readonly nominalFps: number,
    private readonly mono0Us: number,
    private readonly wall0Us: number,
    /** Capture time of the frame before this file's first (the previous segment's last), to time the gap. */
    carryPrevUs: number | null = null,
  ) {
    this.prevCaptureUs = carryPrevUs;
  }

  get frames(): number {
    return this.count;
  }

  get droppedFrames(): number {
    return this.dropped;
  }

  next(f: { captureUs: number; pts: number; keyframe: boolean; bytes: number; flags: string[]; expectedGap: boolean }): FrameRow {
    this.count += 1;
    const intervalUs = this.prevCaptureUs === null ? null : f.captureUs - this.prevCaptureUs;
    let missingBefore = 0;
    if (intervalUs !== null && !f.expectedGap && this.nominalFps > 0) {
      const periodUs = 1e6 / this.nominalFps;
      missingBefore = Math.max(0, Math.round(intervalUs / periodUs) - 1);
      this.dropped += missingBefore;
    }
    this.prevCaptureUs = f.captureUs;
    return {
      recordingId: this.recordingId,
      index: this.count,
      captureUs: f.captureUs,
      wallUs: this.wall0Us + (f.captureUs - this.mono0Us),
      intervalUs,
      missingBefore,
      pts: f.pts,
      keyframe: f.keyframe,
      bytes: f.bytes,
      flags: f.flags.join(' '),
    };
  }
}
