import type { Writable } from 'node:stream';
import type { CapturedFrame } from './captured-frame.ts';
import { FrameSink } from './frame-sink.ts';

/**
 * The preview stage: the live stream into the preview decoder's stdin. A decoder that falls behind (slow
 * machine) is not queued for: whole frames are dropped until the pipe drains, then the gate waits for the next
 * keyframe, so the decoder never sees a broken GOP.
 */
export class PreviewSink extends FrameSink {
  private choked = false;

  constructor(
    private readonly input: Writable,
    psiOf: () => Buffer | null,
  ) {
    super(psiOf);
  }

  /** Offer a frame unless the decoder is still behind. */
  feed(f: CapturedFrame): void {
    if (this.choked || this.input.writableEnded || this.input.destroyed) return;
    this.offer(f, () => undefined);
  }

  protected writePsi(psi: Buffer): void {
    this.input.write(psi);
  }

  protected writeFrame(f: CapturedFrame): void {
    if (this.input.write(f.au.packets)) return;
    this.choked = true;
    this.input.once('drain', () => {
      this.choked = false;
      this.resync();
    });
  }
}
