import type { CapturedFrame } from './captured-frame.ts';
import { FrameSink } from './frame-sink.ts';

/** What a recorded frame carries besides its bytes: timing flags and whether a gap before it is expected. */
export interface FrameMarks {
  flags: string[];
  expectedGap: boolean;
}

/** A file that takes TS packets and makes a timing row per frame (recording/RecordingFile). */
export interface TimedTsFile {
  writePsi(psi: Buffer): void;
  writeFrame(f: CapturedFrame, flags: string[], expectedGap: boolean): boolean;
}

/** The recording stage: one per file (segment); the recorder decides which frames it offers. */
export class RecordingSink extends FrameSink<FrameMarks> {
  constructor(
    private readonly file: TimedTsFile,
    psiOf: () => Buffer | null,
  ) {
    super(psiOf);
  }

  protected writePsi(psi: Buffer): void {
    this.file.writePsi(psi);
  }

  protected writeFrame(f: CapturedFrame, m: FrameMarks): void {
    this.file.writeFrame(f, m.flags, m.expectedGap);
  }
}
