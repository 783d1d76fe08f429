import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkPulseFrames } from '../../src/sync/pulse-frames.ts';

/** A 30 Hz trigger train (like the Pico PWM of the Raspberry Pi GS camera guide) and its frames at a lag. */
function train(n: number, opts: { periodUs?: number; lagUs?: number; jitterUs?: number; t0?: number } = {}) {
  const period = opts.periodUs ?? 33_333;
  const t0 = opts.t0 ?? 5_000_000_000;
  const pulses = Array.from({ length: n }, (_, i) => t0 + i * period);
  let seed = 7;
  const jitter = (): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return Math.round(((seed / 2 ** 31) * 2 - 1) * (opts.jitterUs ?? 0));
  };
  const frames = pulses.map((p, i) => ({ frame_index: i, capture_us: p + (opts.lagUs ?? 6_014) + jitter() }));
  return { pulses, frames, period };
}
const renumber = <T extends { capture_us: number }>(fs: T[]) => fs.map((f, i) => ({ ...f, frame_index: i }));

describe('hardware trigger: pulses ↔ frames', () => {
  it('N pulses → N frames: all matched, the lag recovered', () => {
    const { pulses, frames } = train(300, { jitterUs: 40 });
    const r = checkPulseFrames(pulses, frames);
    assert.equal(r.ok, true);
    assert.deepEqual([r.pulses, r.frames, r.matched, r.missing.length, r.extra.length], [300, 300, 300, 0, 0]);
    assert.ok(Math.abs(r.lag_us! - 6_014) <= 40, `lag ${r.lag_us}`);
    assert.ok(r.residual_us!.max <= 80);
  });

  it('a dropped pulse (no frame for it) and an extra frame are each counted once, with their times', () => {
    const { pulses, frames } = train(200, { jitterUs: 30 });
    const extraAt = pulses[120]! + 6_014 + 16_000; // between pulses 120 and 121
    const withFaults = renumber([...frames.filter((_, i) => i !== 57), { frame_index: -1, capture_us: extraAt }].sort((a, b) => a.capture_us - b.capture_us));
    const r = checkPulseFrames(pulses, withFaults);
    assert.equal(r.ok, false);
    assert.equal(r.frames, 200);
    assert.equal(r.matched, 199);
    assert.deepEqual(r.missing, [{ pulse_index: 57, pulse_mono_us: pulses[57] }]);
    assert.equal(r.extra.length, 1);
    const x = r.extra[0]!;
    assert.equal(x.capture_us, extraAt);
    assert.equal(x.frame_index, 120, 'renumbered: frame 120 is the extra one (57 is gone, 120 shifted down by one, then the extra)');
    assert.ok(x.nearest_pulse_index === 120 || x.nearest_pulse_index === 121);
  });

  it('the first frame missing or extra does not throw the lag off', () => {
    const { pulses, frames } = train(100);
    const r1 = checkPulseFrames(pulses, renumber(frames.slice(1)));
    assert.deepEqual(r1.missing.map((m) => m.pulse_index), [0]);
    assert.equal(r1.extra.length, 0);
    const early = { frame_index: -1, capture_us: frames[0]!.capture_us - 20_000 };
    const r2 = checkPulseFrames(pulses, renumber([early, ...frames]));
    assert.deepEqual(r2.extra.map((e) => e.capture_us), [early.capture_us]);
    assert.equal(r2.missing.length, 0);
    assert.equal(r2.lag_us, 6_014);
  });

  it('a lag longer than the pulse interval (fast trigger, long readout) is still found', () => {
    const { pulses, frames } = train(400, { periodUs: 5_000, lagUs: 12_345 });
    const r = checkPulseFrames(pulses, renumber(frames.filter((_, i) => i !== 200)), { maxLagUs: 50_000 });
    // Frames 0-1 at this lag come from pulses before the window; here every frame has its pulse in the list.
    assert.deepEqual(r.missing.map((m) => m.pulse_index), [200]);
    assert.equal(r.extra.length, 0);
  });

  it('no pulses: every frame is extra; no frames: every pulse is missing; nothing: ok', () => {
    const { pulses, frames } = train(5);
    const a = checkPulseFrames([], frames);
    assert.equal(a.extra.length, 5);
    assert.equal(a.ok, false);
    const b = checkPulseFrames(pulses, []);
    assert.equal(b.missing.length, 5);
    assert.equal(b.ok, false);
    assert.equal(checkPulseFrames([], []).ok, true);
  });

  it('a given lag and tolerance are used as given', () => {
    const { pulses, frames } = train(50, { lagUs: 6_014 });
    const r = checkPulseFrames(pulses, frames, { lagUs: 0, toleranceUs: 1_000 });
    assert.equal(r.matched, 0, 'at lag 0 nothing lies within 1 ms of a pulse');
    assert.equal(r.missing.length, 50);
    assert.equal(r.extra.length, 50);
  });
});
