import type { CapturedFrame } from './captured-frame.ts';

/**
 * The last few seconds of the stream, in whole GOPs, so a recording can begin on a keyframe at or before
 * (trigger − pre-roll), and a resume can restart on a keyframe. Bounded in time and in bytes: the oldest GOP
 * goes first, but the newest GOP is always kept whole so there is something to start from. The frames are the
 * demuxer's views of the pipe chunks (no copies), so a frame evicted here is one whose chunk can be freed.
 */
export class PrerollRing {
  /** Oldest first; frames[0] is always a keyframe. */
  private frames: CapturedFrame[] = [];
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
    return this.frames.length;
  }

  get byteSize(): number {
    return this.bytes;
  }

  /** Capture-time span held, µs. */
  get spanUs(): number {
    if (this.size === 0) return 0;
    return this.frames[this.frames.length - 1]!.captureUs - this.frames[0]!.captureUs;
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
    this.bytes = 0;
  }

  /**
   * Frames from the newest keyframe captured at or before `atUs` up to the newest frame. When every held
   * keyframe is after `atUs` (the ring is younger than asked), start from the oldest keyframe held.
   */
  fromKeyframeAtOrBefore(atUs: number): CapturedFrame[] {
    let start = 0; // the oldest held frame is always a keyframe
    for (let i = this.frames.length - 1; i >= 0; i--) {
      const f = this.frames[i]!;
      if (f.au.keyframe && f.captureUs <= atUs) {
        start = i;
        break;
      }
    }
    return this.frames.slice(start);
  }

  private evict(): void {
    const newest = this.frames[this.frames.length - 1];
    if (!newest) return;
    let head = 0;
    for (;;) {
      // The next keyframe after the head: dropping the head GOP is allowed only if one exists.
      let next = -1;
      for (let i = head + 1; i < this.frames.length; i++) {
        if (this.frames[i]!.au.keyframe) {
          next = i;
          break;
        }
      }
      if (next < 0) break;
      const tooOld = newest.captureUs - this.frames[next]!.captureUs >= this.windowUs;
      const tooBig = this.bytes > this.maxBytes;
      if (!tooOld && !tooBig) break;
      for (let i = head; i < next; i++) this.bytes -= this.frames[i]!.au.packets.length;
      head = next;
    }
    // Evicted frames leave the array at once: a slot still pointing at one keeps its pipe chunk alive. (They used
    // to stay until 1024 had gone: 34 s of video per camera at 30 fps, about 20 MiB of a 640x480 camera's chunks
    // held past the window; issue 17.) A whole GOP goes at a time, so this shifts the array once per GOP.
    if (head > 0) this.frames.splice(0, head);
  }
}
