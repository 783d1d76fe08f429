import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkPulseFrames, checkTrialPulseFrames } from '../../src/sync/pulse-frames.ts';

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

describe('hardware trigger: one trial\'s window (trigger to stop, on the frame clock)', () => {
  // 30 Hz, lag 6014 µs, tolerance a quarter period; the trial's window is placed on exact frame times below.
  const LAG = 6_014;
  const TOL = 8_333;
  const { pulses, frames, period } = train(60);
  const frameAt = (i: number): number => pulses[i]! + LAG;
  const check = (fs: Array<{ frame_index: number; capture_us: number }>, fromUs: number, toUs: number, ps: number[] = pulses) =>
    checkTrialPulseFrames(ps, fs, { fromUs, toUs, lagUs: LAG, toleranceUs: TOL });

  it('a frame exactly at the trigger instant is in the trial; one exactly at the stop instant is not, nor is its pulse missing', () => {
    const r = check(frames, frameAt(10), frameAt(20));
    assert.deepEqual([r.pulses, r.frames, r.matched, r.missing.length, r.extra.length, r.unjudged_at_stop], [10, 10, 10, 0, 0, 0]);
    assert.equal(r.ok, true);
    // The recording cuts at the stop: the frame at the stop instant is never in it.
    const cut = frames.filter((f) => f.capture_us < frameAt(20));
    assert.deepEqual([check(cut, frameAt(10), frameAt(20)).pulses, check(cut, frameAt(10), frameAt(20)).ok], [10, true]);
  });

  it('one frame before the trigger and one after the stop: outside the trial, neither extra nor missing', () => {
    const r = check(frames, frameAt(10) + 1, frameAt(20) - 1);
    // Frame 10 is 1 µs before the trigger, frame 19 1 µs before the stop (in), frame 20 after it.
    assert.deepEqual([r.pulses, r.frames, r.matched, r.missing.length, r.extra.length], [9, 9, 9, 0, 0]);
    assert.equal(r.ok, true);
  });

  it('a frame just inside the trigger whose pulse + lag falls just before it: matched, not extra', () => {
    const jittered = frames.map((f, i) => (i === 10 ? { ...f, capture_us: f.capture_us + 30 } : f));
    const from = frameAt(10) + 10; // pulse 10 + lag is 10 µs before the trigger; its frame (jitter +30 µs) 20 µs after
    const r = check(jittered, from, frameAt(20));
    assert.deepEqual([r.pulses, r.frames, r.matched, r.extra.length, r.missing.length], [10, 10, 10, 0, 0]);
  });

  it('a pulse due just before the stop whose frame came just after it (not recorded): not called missing', () => {
    const to = frameAt(19) + 10; // pulse 19 + lag is 10 µs before the stop; its frame came 30 µs late
    const recorded = frames.map((f, i) => (i === 19 ? { ...f, capture_us: f.capture_us + 30 } : f)).filter((f) => f.capture_us < to);
    const r = check(recorded, frameAt(10), to);
    assert.deepEqual([r.pulses, r.frames, r.matched, r.missing.length, r.extra.length, r.unjudged_at_stop], [9, 9, 9, 0, 0, 1]);
    assert.equal(r.ok, true);
  });

  it('a frame really missing is still flagged next to both edges: the first pulse of the trial, the last one before the tolerance', () => {
    const from = frameAt(10);
    const to = frameAt(19) + TOL + 1; // pulse 19's frame is due more than the tolerance before the stop: judged
    const recorded = frames.filter((f, i) => i !== 10 && i !== 19 && f.capture_us < to);
    const r = check(recorded, from, to);
    assert.deepEqual(r.missing.map((m) => m.pulse_index - r.missing[0]!.pulse_index), [0, 9]);
    assert.deepEqual(r.missing.map((m) => m.pulse_mono_us), [pulses[10], pulses[19]]);
    assert.deepEqual([r.pulses, r.frames, r.matched, r.extra.length, r.unjudged_at_stop], [10, 8, 8, 0, 0]);
    assert.equal(r.ok, false);
  });

  it('extra frames next to the trigger and the stop are flagged; a frame 1 µs early for the pulse due at the stop is that pulse\'s', () => {
    const from = frameAt(10);
    const to = frameAt(20);
    const extras = [{ frame_index: -1, capture_us: from + Math.round(period / 2) }, { frame_index: -2, capture_us: to - Math.round(period / 2) + 1 }];
    const r = check([...frames, ...extras], from, to);
    assert.deepEqual(r.extra.map((x) => x.capture_us), extras.map((x) => x.capture_us));
    assert.deepEqual([r.pulses, r.matched, r.missing.length], [10, 10, 0]);
    const early = check([...frames.filter((f) => f.capture_us < to), { frame_index: -3, capture_us: to - 1 }], from, to);
    assert.deepEqual([early.pulses, early.frames, early.matched, early.extra.length, early.missing.length], [11, 11, 11, 0, 0]);
  });

  it('the pulse source stops mid-trial: the frames after it are extra, nothing is called missing', () => {
    const from = frameAt(10);
    const to = frameAt(20);
    const r = check(frames, from, to, pulses.slice(0, 15));
    assert.deepEqual([r.pulses, r.frames, r.matched, r.extra.length, r.missing.length], [5, 10, 5, 5, 0]);
    // A camera that got no pulses made no frames: 5 pulses, 5 frames, nothing flagged.
    const consistent = check(frames.filter((_, i) => i < 15), from, to, pulses.slice(0, 15));
    assert.deepEqual([consistent.pulses, consistent.frames, consistent.ok], [5, 5, true]);
  });
});
