import type { CapturedFrame } from './captured-frame.ts';

/**
 * A stage the live stream is written to (in the spirit of rpicam-apps' Output classes): a recording file, the
 * preview decoder. The base owns the gate every such stage needs: nothing is written until a keyframe, and each
 * keyframe is preceded by the stream's PAT/PMT, so what the stage receives decodes on its own from its first
 * byte (and from any later keyframe). A frame of a new source run closes the gate again (new PSI, new keyframe).
 */
export abstract class FrameSink<M = void> {
  private waiting = true;
  private run: number | null = null;

  /** @param psiOf PAT + PMT of the running stream (null before the demuxer saw them). */
  constructor(private readonly psiOf: () => Buffer | null) {}

  /** True while the gate waits for a keyframe. */
  get waitingKeyframe(): boolean {
    return this.waiting;
  }

  /** Write nothing more until the next keyframe (a resume after a gap, a decoder that fell behind). */
  resync(): void {
    this.waiting = true;
  }

  /**
   * Offer one frame of the live stream; `meta` is asked only for a frame that passes the gate.
   * Returns true when the frame was written.
   */
  offer(f: CapturedFrame, meta: () => M): boolean {
    if (this.run !== null && f.run !== this.run) this.waiting = true;
    if (f.au.keyframe) {
      const psi = this.psiOf();
      // A keyframe without PSI cannot open the gate: a decoder would not know the stream.
      if (!psi) {
        if (this.waiting) return false;
      } else {
        if (this.waiting) this.waiting = false;
        this.writePsi(psi);
      }
    } else if (this.waiting) {
      return false;
    }
    this.run = f.run;
    this.writeFrame(f, meta());
    return true;
  }

  protected abstract writePsi(psi: Buffer): void;
  protected abstract writeFrame(f: CapturedFrame, meta: M): void;
}
