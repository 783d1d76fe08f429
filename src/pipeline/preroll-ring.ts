import type { CapturedFrame } from './captured-frame.ts';

/**
 * The last few seconds of the stream, in whole GOPs, so a recording can begin on a keyframe at or before
 * (trigger − pre-roll), and a resume can restart on a keyframe. Bounded in time and in bytes: the oldest GOP
 * goes first, but the newest GOP is always kept whole so there is something to start from.
 */
export class PrerollRing {
  private frames: CapturedFrame[] = [];
  private head = 0;
  private bytes = 0;

  constructor(
    private windowUs: number,
    private maxBytes: number,
  ) {}

  configure(windowUs: number, maxBytes: number): void {
    this.windowUs = windowUs;
    this.maxBytes = maxBytes;
    this.evict();
  }

  get size(): number {
    return this.frames.length - this.head;
  }

  get byteSize(): number {
    return this.bytes;
  }

  /** Capture-time span held, µs. */
  get spanUs(): number {
    if (this.size === 0) return 0;
    return this.frames[this.frames.length - 1]!.captureUs - this.frames[this.head]!.captureUs;
  }

  push(f: CapturedFrame): void {
    // A frame that cannot be decoded from anything held (no keyframe yet) is useless to a recording.
    if (this.size === 0 && !f.au.keyframe) return;
    this.frames.push(f);
    this.bytes += f.au.packets.length;
    this.evict();
  }

  clear(): void {
    this.frames = [];
    this.head = 0;
    this.bytes = 0;
  }

  /**
   * Frames from the newest keyframe captured at or before `atUs` up to the newest frame. When every held
   * keyframe is after `atUs` (the ring is younger than asked), start from the oldest keyframe held.
   */
  fromKeyframeAtOrBefore(atUs: number): CapturedFrame[] {
    let start = -1;
    for (let i = this.frames.length - 1; i >= this.head; i--) {
      const f = this.frames[i]!;
      if (f.au.keyframe && f.captureUs <= atUs) {
        start = i;
        break;
      }
    }
    if (start < 0) start = this.head; // oldest held frame is always a keyframe
    return this.frames.slice(start);
  }

  private evict(): void {
    const newest = this.frames[this.frames.length - 1];
    if (!newest) return;
    for (;;) {
      // The next keyframe after the head: dropping the head GOP is allowed only if one exists.
      let next = -1;
      for (let i = this.head + 1; i < this.frames.length; i++) {
        if (this.frames[i]!.au.keyframe) {
          next = i;
          break;
        }
      }
      if (next < 0) break;
      const tooOld = newest.captureUs - this.frames[next]!.captureUs >= this.windowUs;
      const tooBig = this.bytes > this.maxBytes;
      if (!tooOld && !tooBig) break;
      for (let i = this.head; i < next; i++) this.bytes -= this.frames[i]!.au.packets.length;
      this.head = next;
    }
    if (this.head > 1024 && this.head > this.frames.length / 2) {
      this.frames = this.frames.slice(this.head);
      this.head = 0;
    }
  }
}
