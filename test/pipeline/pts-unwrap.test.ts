import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PTS_WRAP } from '../../src/pipeline/access-unit.ts';
import { PtsUnwrapper, unwrapNear } from '../../src/pipeline/pts-unwrap.ts';

const FRAME = 3000; // 30 fps at 90 kHz

describe('PtsUnwrapper', () => {
  it('passes the first value through and follows a rising sequence unchanged', () => {
    const u = new PtsUnwrapper();
    assert.equal(u.last, null);
    for (const v of [126_000, 129_000, 132_000, 4_000_000_000]) assert.equal(u.unwrap(v), v);
    assert.equal(u.last, 4_000_000_000);
  });

  it('continues across a 33-bit wrap', () => {
    const u = new PtsUnwrapper();
    const start = PTS_WRAP - 5 * FRAME + 17;
    const out: number[] = [];
    for (let i = 0; i < 12; i++) out.push(u.unwrap((start + i * FRAME) % PTS_WRAP));
    assert.deepEqual(
      out,
      Array.from({ length: 12 }, (_, i) => start + i * FRAME),
    );
    assert.ok(out[11] > PTS_WRAP, 'really went past the wrap');
  });

  it('keeps counting over several wraps (≈26.5 h each)', () => {
    const u = new PtsUnwrapper();
    const step = PTS_WRAP / 3 - 1; // big steps, still under half the range
    let prev = -1;
    for (let i = 0; i < 20; i++) {
      const v = u.unwrap((i * step) % PTS_WRAP);
      assert.equal(v, i * step);
      assert.ok(v > prev, `rises at step ${i}`);
      prev = v;
    }
  });

  it('does not take B-frame reordering (small steps back) for a wrap, also right at the wrap', () => {
    // Presentation order of an IBBP stream in decode order: P(+3) B(+1) B(+2) ...
    const decodeOrder = [0, 3, 1, 2, 6, 4, 5, 9, 7, 8];
    for (const base of [90_000, PTS_WRAP - 4 * FRAME]) {
      const u = new PtsUnwrapper();
      const out = decodeOrder.map((k) => u.unwrap((base + k * FRAME) % PTS_WRAP));
      assert.deepEqual(
        out,
        decodeOrder.map((k) => base + k * FRAME),
        `base ${base}`,
      );
    }
  });

  it('treats a step back of more than half the range as a wrap forward', () => {
    const u = new PtsUnwrapper();
    u.unwrap(PTS_WRAP / 2 + 10);
    assert.equal(u.unwrap(5), PTS_WRAP + 5);
    const v = new PtsUnwrapper();
    v.unwrap(PTS_WRAP / 2 - 10);
    assert.equal(v.unwrap(5), 5, 'a step back of just under half the range is a step back');
  });

  it('reduces out-of-range input to 33 bits and can be reset', () => {
    const u = new PtsUnwrapper();
    assert.equal(u.unwrap(PTS_WRAP + 42), 42);
    assert.equal(u.unwrap(-FRAME), -FRAME, 'raw 2^33-3000 right after 42 is a small step back');
    u.reset();
    assert.equal(u.last, null);
    assert.equal(u.unwrap(PTS_WRAP - 1), PTS_WRAP - 1);
  });
});

describe('unwrapNear', () => {
  it('places a PTS next to its unwrapped DTS across the wrap', () => {
    const dts = PTS_WRAP + 100; // DTS already past the wrap
    assert.equal(unwrapNear(PTS_WRAP - 2900, dts), PTS_WRAP - 2900, 'raw value from before the wrap');
    assert.equal(unwrapNear(6100, dts), PTS_WRAP + 6100);
    const dtsBefore = PTS_WRAP - 3000; // DTS before the wrap, PTS (later) after it
    assert.equal(unwrapNear(3000, dtsBefore), PTS_WRAP + 3000);
  });
});
