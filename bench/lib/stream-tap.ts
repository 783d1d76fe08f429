import type { FrameSource } from '../../src/runtime/camera-runtime.ts';
import type { CapturedFrame } from '../../src/pipeline/captured-frame.ts';

/**
 * Every frame of a camera's live stream as rigcam's pipeline delivered it (before any recorder sees it), in
 * preallocated typed arrays so that watching the stream adds no garbage to the memory figures.
 */
export class StreamTap {
  n = 0;
  ptsRaw: Float64Array;
  captureUs: Float64Array;
  arrivalUs: Float64Array;
  private readonly onFrame = (f: CapturedFrame): void => this.add(f);

  constructor(
    private readonly pipeline: FrameSource,
    capacity: number,
  ) {
    this.ptsRaw = new Float64Array(capacity);
    this.captureUs = new Float64Array(capacity);
    this.arrivalUs = new Float64Array(capacity);
    pipeline.on('frame', this.onFrame);
  }

  stop(): void {
    this.pipeline.off('frame', this.onFrame);
  }

  private add(f: CapturedFrame): void {
    if (this.n === this.ptsRaw.length) this.grow();
    this.ptsRaw[this.n] = f.au.ptsRaw;
    this.captureUs[this.n] = f.captureUs;
    this.arrivalUs[this.n] = f.arrivalUs;
    this.n += 1;
  }

  private grow(): void {
    const next = (a: Float64Array): Float64Array => {
      const b = new Float64Array(a.length * 2);
      b.set(a);
      return b;
    };
    this.ptsRaw = next(this.ptsRaw);
    this.captureUs = next(this.captureUs);
    this.arrivalUs = next(this.arrivalUs);
  }

  /** Live index of each PTS (PTS wraps only every 26.5 h, so it is unique over a benchmark). */
  indexByPts(): Map<number, number> {
    const m = new Map<number, number>();
    for (let i = 0; i < this.n; i++) m.set(this.ptsRaw[i]!, i);
    return m;
  }

  /** Frames missing from the live stream itself: PTS steps longer than one frame period (the source's own gaps). */
  sourceGaps(fps: number, from = 0, to = this.n): number {
    const period = 90_000 / fps;
    let missing = 0;
    for (let i = Math.max(1, from); i < to; i++) {
      const step = this.ptsRaw[i]! - this.ptsRaw[i - 1]!;
      if (step > 0) missing += Math.max(0, Math.round(step / period) - 1);
    }
    return missing;
  }

  /** First live index whose capture time is at or after `us` (n when none). */
  firstAtOrAfter(us: number): number {
    let lo = 0;
    let hi = this.n;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.captureUs[mid]! < us) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
