// The frame-sink gate (keyframe first, PAT/PMT before every keyframe, a new run closes the gate) on a real
// H.264 stream made by ffmpeg and demuxed by our demuxer; what a sink writes is checked with ffprobe.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import type { CapturedFrame } from '../../src/pipeline/captured-frame.ts';
import { PreviewSink } from '../../src/pipeline/preview-sink.ts';
import { RecordingSink, type FrameMarks, type TimedTsFile } from '../../src/pipeline/recording-sink.ts';
import { TsDemuxer } from '../../src/pipeline/ts-demux.ts';
import { makeTestTs, probeFrames } from '../helpers/ffmpeg-ts.ts';

const PAT_PID = 0;

/** 90 frames, a keyframe every 30 (indices 0, 30, 60), as the pipeline would place them. */
function liveFrames(run = 1): { frames: CapturedFrame[]; psi: Buffer } {
  const frames: CapturedFrame[] = [];
  const demux = new TsDemuxer({ onAccessUnit: (au) => frames.push({ au, captureUs: au.pts * 100 / 9, arrivalUs: 0, run }), onWarning: () => undefined });
  demux.push(makeTestTs({ frames: 90, gop: 30 }));
  demux.end();
  const p = demux.psiPackets!;
  return { frames, psi: Buffer.concat([p.pat, p.pmt]) };
}

class FileTarget implements TimedTsFile {
  readonly chunks: Buffer[] = [];
  readonly psiAt: number[] = [];
  readonly rows: Array<{ seq: number; flags: string[] }> = [];
  writePsi(psi: Buffer): void {
    this.psiAt.push(this.rows.length);
    this.chunks.push(psi);
  }
  writeFrame(f: CapturedFrame, flags: string[]): boolean {
    this.rows.push({ seq: f.au.seq, flags });
    this.chunks.push(f.au.packets);
    return true;
  }
}

const pids = (b: Buffer): number[] => {
  const out: number[] = [];
  for (let i = 0; i < b.length; i += 188) out.push(((b[i + 1]! & 0x1f) << 8) | b[i + 2]!);
  return out;
};

describe('frame sinks', () => {
  const { frames, psi } = liveFrames();
  assert.deepEqual(
    frames.flatMap((f, i) => (f.au.keyframe ? [i] : [])),
    [0, 30, 60],
    'the test stream has its keyframes where expected',
  );

  it('a recording sink joined mid-GOP writes from the next keyframe, PAT/PMT before each keyframe; the file decodes', () => {
    const target = new FileTarget();
    const sink = new RecordingSink(target, () => psi);
    let asked = 0;
    const written = frames.slice(5).map((f) => sink.offer(f, (): FrameMarks => (asked++, { flags: [], expectedGap: false })));
    assert.equal(written.filter(Boolean).length, 60);
    assert.deepEqual(written.slice(0, 26), [...Array(25).fill(false), true], 'nothing before the keyframe at 30');
    assert.equal(asked, 60, 'marks are asked only of written frames');
    assert.deepEqual(target.psiAt, [0, 30], 'PSI before each keyframe');
    const file = Buffer.concat(target.chunks);
    assert.equal(pids(file)[0], PAT_PID, 'the file begins with the PAT');
    const probed = probeFrames(file);
    assert.equal(probed.length, 60, 'ffprobe reads every written frame');
    assert.equal(probed[0]!.keyframe, true, 'and the first is a keyframe');
  });

  it('resync and a new source run close the gate until the next keyframe', () => {
    const target = new FileTarget();
    const sink = new RecordingSink(target, () => psi);
    const marks = (): FrameMarks => ({ flags: [], expectedGap: false });
    for (const f of frames.slice(0, 10)) sink.offer(f, marks);
    assert.equal(target.rows.length, 10);
    sink.resync();
    assert.equal(sink.waitingKeyframe, true);
    for (const f of frames.slice(10, 40)) sink.offer(f, marks);
    assert.deepEqual(target.rows.slice(10).map((r) => r.seq), frames.slice(30, 40).map((f) => f.au.seq), 'resumed at the keyframe');
    const next = liveFrames(2).frames;
    const before = target.rows.length;
    assert.equal(sink.offer(next[1]!, marks), false, 'a non-keyframe of a new run is not written');
    assert.equal(sink.offer(next[0]!, marks), true, 'its keyframe opens the gate again');
    assert.equal(target.rows.length, before + 1);
    assert.equal(target.psiAt.at(-1), before, 'with PSI first');
  });

  it('a keyframe cannot open the gate before the PSI is known', () => {
    let known: Buffer | null = null;
    const target = new FileTarget();
    const sink = new RecordingSink(target, () => known);
    assert.equal(sink.offer(frames[0]!, () => ({ flags: [], expectedGap: false })), false);
    known = psi;
    assert.equal(sink.offer(frames[30]!, () => ({ flags: [], expectedGap: false })), true);
  });

  it('a preview sink drops whole frames while the decoder is behind, then restarts at a keyframe', async () => {
    const got: Buffer[] = [];
    let release: (() => void) | null = null;
    // A decoder that takes nothing until released: the first write fills its 1-byte buffer.
    const decoder = new Writable({
      highWaterMark: 1,
      write(chunk: Buffer, _enc, done) {
        got.push(chunk);
        if (release === null) release = done;
        else done();
      },
    });
    const sink = new PreviewSink(decoder, () => psi);
    for (const f of frames.slice(0, 20)) sink.feed(f);
    assert.equal(got.length, 1, 'only the PSI reached the decoder before it choked');
    const queued = decoder.writableLength;
    assert.ok(queued > 0 && queued <= psi.length + frames[0]!.au.packets.length, 'no backlog piles up');
    (release as unknown as () => void)();
    await new Promise((r) => setImmediate(r));
    const afterDrain = got.length;
    for (const f of frames.slice(20, 31)) sink.feed(f);
    const fed = Buffer.concat(got.slice(afterDrain));
    assert.equal(pids(fed)[0], PAT_PID, 'after the drain the decoder gets PSI first');
    assert.equal(Buffer.compare(fed.subarray(psi.length), frames[30]!.au.packets), 0, 'then the next keyframe, nothing of the broken GOP');
  });
});
