import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { CapturedFrame } from '../../src/pipeline/captured-frame.ts';
import { PrerollRing } from '../../src/pipeline/preroll-ring.ts';

const FPS = 30;
const GOP = 30; // a keyframe every second
const FRAME_US = 1e6 / FPS;

/** Frame n of a 30 fps stream with a keyframe every GOP frames; its packets a fresh buffer as a pipe chunk is. */
function frame(n: number, bytes = 188 * 10): CapturedFrame {
  return {
    au: { pid: 256, ptsRaw: n * 3000, pts: n * 3000, dts: n * 3000, keyframe: n % GOP === 0, packets: Buffer.alloc(bytes, n & 0xff), payloadBytes: bytes - 40, discontinuity: false, seq: n },
    captureUs: 1_000_000_000 + Math.round(n * FRAME_US),
    arrivalUs: 1_000_000_000 + Math.round(n * FRAME_US) + 2000,
    run: 1,
  };
}

const seqs = (fs: CapturedFrame[]): number[] => fs.map((f) => f.au.seq);

describe('pre-roll ring', () => {
  it('holds whole GOPs: the window in time, always the newest GOP, never a frame before the first keyframe', () => {
    const ring = new PrerollRing(2e6, 1e9);
    ring.push({ ...frame(29), au: { ...frame(29).au, keyframe: false } });
    assert.equal(ring.size, 0, 'no keyframe yet: nothing to start from');
    for (let n = 30; n < 30 + 5 * GOP; n++) ring.push(frame(n));
    const held = seqs(ring.fromKeyframeAtOrBefore(0));
    assert.equal(held[0]! % GOP, 0, 'starts on a keyframe');
    // A GOP goes only once the next keyframe is itself at least the window older than the newest frame.
    const newest = 30 + 5 * GOP - 1;
    assert.ok(newest - held[0]! >= 2 * FPS && newest - held[0]! < 3 * FPS + GOP, `held from ${held[0]} to ${newest}`);
    assert.deepEqual(held, Array.from({ length: newest - held[0]! + 1 }, (_, i) => held[0]! + i));
    assert.equal(ring.byteSize, held.length * 1880);
  });

  it('a byte bound drops old GOPs but keeps the newest whole', () => {
    const ring = new PrerollRing(60e6, 1880 * 10);
    for (let n = 0; n < 3 * GOP; n++) ring.push(frame(n));
    assert.deepEqual(seqs(ring.fromKeyframeAtOrBefore(0)), Array.from({ length: GOP }, (_, i) => 2 * GOP + i));
  });

  it('starts from the newest keyframe at or before the instant: one µs either side of a keyframe', () => {
    const ring = new PrerollRing(10e6, 1e9);
    for (let n = 0; n < 4 * GOP; n++) ring.push(frame(n));
    const k2 = frame(2 * GOP).captureUs;
    assert.equal(ring.fromKeyframeAtOrBefore(k2)[0]!.au.seq, 2 * GOP, 'at the keyframe: from it');
    assert.equal(ring.fromKeyframeAtOrBefore(k2 - 1)[0]!.au.seq, GOP, 'a µs before it: the one before');
    assert.equal(ring.fromKeyframeAtOrBefore(k2 + 1)[0]!.au.seq, 2 * GOP);
    assert.equal(ring.fromKeyframeAtOrBefore(0)[0]!.au.seq, 0, 'older than anything held: the oldest keyframe');
    assert.equal(ring.fromKeyframeAtOrBefore(Number.MAX_SAFE_INTEGER).at(-1)!.au.seq, 4 * GOP - 1, 'up to the newest frame');
  });

  it('an evicted frame is not kept alive by the ring (its pipe chunk can be freed)', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const ring = new PrerollRing(2e6, 1e9);
    const refs: Array<WeakRef<Buffer>> = [];
    const total = 40 * GOP; // 40 s: more than the 1024 evicted frames the ring used to keep
    for (let n = 0; n < total; n++) {
      const f = frame(n, 188 * 50);
      refs.push(new WeakRef(f.au.packets));
      ring.push(f);
    }
    const oldestHeld = ring.fromKeyframeAtOrBefore(0)[0]!.au.seq;
    // Allocation and collection are asynchronous with respect to WeakRefs: collect across a few turns.
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setImmediate(r));
      gc();
    }
    const evictedAlive = refs.slice(0, oldestHeld).filter((r) => r.deref() !== undefined).length;
    assert.equal(evictedAlive, 0, `${evictedAlive} of ${oldestHeld} evicted frames still held`);
    assert.ok(refs.slice(oldestHeld).every((r) => r.deref() !== undefined), 'the frames held are alive');
  });
});
