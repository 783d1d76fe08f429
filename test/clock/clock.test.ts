import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { monoNowUs, monoToWallUs, offsetAfter, refreshPair, wallMonoPair, wallToMonoUs } from '../../src/clock.ts';
import { repoRoot } from '../helpers/cli.ts';
import { faketimeEnv, libfaketimeMissing } from '../helpers/faketime.ts';
import { skipUnlessCi } from '../helpers/requires.ts';
import { tmpDir } from '../helpers/tmp.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** CLOCK_REALTIME − CLOCK_MONOTONIC as another process reads it (both clocks are system-wide), to ~1 µs. */
function pythonOffsetUs(): number {
  const code =
    'import time\n' +
    'best=None\n' +
    'for _ in range(20):\n' +
    '  a=time.clock_gettime_ns(time.CLOCK_MONOTONIC); w=time.clock_gettime_ns(time.CLOCK_REALTIME); b=time.clock_gettime_ns(time.CLOCK_MONOTONIC)\n' +
    '  if best is None or b-a<best[0]: best=(b-a, w-(a+b)//2)\n' +
    'print(best[1])\n';
  const r = spawnSync('python3', ['-c', code], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return Number(BigInt(r.stdout.trim()) / 1000n);
}

describe('clock', () => {
  it('monoNowUs is CLOCK_MONOTONIC in µs and never goes back', () => {
    let prev = monoNowUs();
    for (let i = 0; i < 10_000; i++) {
      const now = monoNowUs();
      assert.ok(now >= prev);
      prev = now;
    }
    // /proc/uptime is CLOCK_BOOTTIME, which equals MONOTONIC plus time suspended (a box does not suspend).
    const uptimeS = Number(spawnSync('cat', ['/proc/uptime'], { encoding: 'utf8' }).stdout.split(' ')[0]);
    assert.ok(Math.abs(monoNowUs() / 1e6 - uptimeS) < 5, `${monoNowUs() / 1e6} vs uptime ${uptimeS}`);
  });

  it('the refresh between trials measures at most once per interval', async () => {
    wallMonoPair();
    assert.equal(refreshPair(), false, 'a pair was just measured');
    assert.equal(refreshPair(1000), false, 'within 1 ms of it');
    await sleep(5);
    assert.equal(refreshPair(1000), true, '5 ms later, with a 1 ms interval');
    assert.equal(refreshPair(1000), false, 'and not again at once');
  });

  it('a wide pair does not replace a precise offset it agrees with; a step replaces it however wide', () => {
    const known = { offsetUs: 1_000_000, uncertaintyUs: 0.2 };
    const pair = (offsetUs: number, uncertaintyUs: number) => ({ wallUs: 5_000_000 + offsetUs, monoUs: 5_000_000, uncertaintyUs });
    assert.equal(offsetAfter(null, pair(999_000, 400)).offsetUs, 999_000, 'the first pair is kept, however wide');
    assert.equal(offsetAfter(known, pair(1_000_250, 400)), known, 'preempted, within its ±400 µs: the precise one stays');
    assert.deepEqual(offsetAfter(known, pair(1_000_003, 0.1)), { offsetUs: 1_000_003, uncertaintyUs: 0.1 }, 'a more precise pair replaces it');
    assert.deepEqual(offsetAfter(known, pair(1_003_000, 400)), { offsetUs: 1_003_000, uncertaintyUs: 400 }, 'stepped by 3 ms: the wide pair replaces it');
    assert.deepEqual(offsetAfter(known, pair(998_000, 400)), { offsetUs: 998_000, uncertaintyUs: 400 }, 'stepped back by 2 ms: replaced');
  });

  it('pairs made at every phase of the millisecond agree to µs (once an offset is known, most of the wait is a sleep)', async () => {
    // The known offset predicts the edge; the pair sleeps until ~0.3 ms before it, spins the rest, and aims at the
    // next edge when it wakes too late. Whatever the phase it is called at, the pair must be as precise as a spun one.
    wallMonoPair();
    const nap = new Int32Array(new SharedArrayBuffer(4));
    // What a spun pair achieves on this machine now, as the baseline: a pair waited for by spinning the whole
    // millisecond, from hrtime reads around Date.now()'s tick (on a quiet box ~0.2 µs; a run with the two cores
    // oversubscribed made every pair ~20 µs wide).
    const spun = (): number => {
      const start = Date.now();
      let lo = process.hrtime.bigint();
      for (;;) {
        const h = process.hrtime.bigint();
        if (Date.now() !== start) return Number(process.hrtime.bigint() - lo) / 2000;
        lo = h;
      }
    };
    const reference: number[] = [];
    // A preempted spin widens any pair, whatever its phase (a CI run under parallel load saw 12 of 40 single tries
    // wider than 20 µs): each phase gets up to three single tries, made at that same phase, and keeps the narrowest.
    // A pair wide for a reason of its own, not a preemption, is wide every time.
    const pairs = [];
    for (let i = 0; i < 40; i++) {
      const napMs = (i % 10) / 10 + Math.random() / 10; // 0–1 ms: every phase of the edge
      let best: ReturnType<typeof wallMonoPair> | undefined;
      for (let t = 0; t < 3 && !(best && best.uncertaintyUs <= 20); t++) {
        await sleep(1);
        Atomics.wait(nap, 0, 0, napMs);
        const p = wallMonoPair(1);
        if (!best || p.uncertaintyUs < best.uncertaintyUs) best = p;
      }
      pairs.push(best!);
      if (i % 4 === 0) reference.push(spun());
    }
    reference.sort((a, b) => a - b);
    const boundUs = Math.max(20, 3 * reference[reference.length >> 1]!);
    const widths = `${pairs.map((p) => p.uncertaintyUs.toFixed(1)).join(', ')}; spun: ${reference.map((w) => w.toFixed(1)).join(', ')}`;
    const precise = pairs.filter((p) => p.uncertaintyUs <= boundUs);
    assert.ok(precise.length >= 30, `pairs within ${boundUs} µs: ${precise.length} of 40 (${widths})`);
    const offsets = precise.map((p) => p.wallUs - p.monoUs);
    assert.ok(Math.max(...offsets) - Math.min(...offsets) <= 2 * boundUs, `precise pairs spread: ${offsets.join(', ')}`);
    const theirs = pythonOffsetUs();
    assert.ok(Math.abs(offsets[0]! - theirs) < 100, `ours ${offsets[0]} vs clock_gettime ${theirs}`);
  });

  it('a wall↔mono pair is precise to a few µs, which Date.now() alone cannot be', async () => {
    const pairs = [];
    for (let i = 0; i < 6; i++) {
      pairs.push(wallMonoPair());
      await sleep(3 + i * 2); // different phases of the millisecond
    }
    const show = pairs.map((p) => `${p.wallUs - p.monoUs}±${p.uncertaintyUs.toFixed(1)}`).join(', ');
    // Date.now()·1000 − hrtime is off by a uniform 0–1000 µs: pairs made that way disagree by hundreds of µs.
    for (const p of pairs) assert.ok(p.uncertaintyUs >= 0 && Number.isFinite(p.uncertaintyUs));
    for (const p of pairs)
      for (const q of pairs)
        assert.ok(Math.abs(p.wallUs - p.monoUs - (q.wallUs - q.monoUs)) <= p.uncertaintyUs + q.uncertaintyUs + 10, `pairs disagree beyond their uncertainty: ${show}`);
    const precise = pairs.filter((p) => p.uncertaintyUs < 50);
    assert.ok(precise.length >= 4, `most pairs within 50 µs: ${show}`);
    const offsets = precise.map((p) => p.wallUs - p.monoUs);
    assert.ok(Math.max(...offsets) - Math.min(...offsets) < 50, `precise pairs spread: ${show}`);

    // Against an independent reader of the same clocks (python's clock_gettime, ns).
    const ours = wallMonoPair();
    const theirs = pythonOffsetUs();
    const diff = ours.wallUs - ours.monoUs - theirs;
    assert.ok(Math.abs(diff) < ours.uncertaintyUs + 100, `ours ${ours.wallUs - ours.monoUs}±${ours.uncertaintyUs} vs clock_gettime ${theirs}: ${diff} µs`);
  });

  it('agrees with Date.now(): every coarse reading lies within the millisecond below the pair', () => {
    const pair = wallMonoPair();
    const offset = pair.wallUs - pair.monoUs;
    const slack = pair.uncertaintyUs + 5;
    let maxCoarse = -Infinity;
    for (let i = 0; i < 20_000; i++) {
      const before = monoNowUs();
      const wall = Date.now() * 1000; // the real wall time floored to the ms, read between `before` and `after`
      const after = monoNowUs();
      // Date.now() floors: wall ≤ offset + after, and wall > offset + before − 1000.
      assert.ok(wall - after <= offset + slack, `Date.now() ${wall - after - offset} µs above the pair`);
      assert.ok(wall - before > offset - 1000 - slack, `Date.now() ${offset - (wall - before)} µs below the pair`);
      maxCoarse = Math.max(maxCoarse, wall - after);
    }
    // And the floor is reached: some reading comes within the last 100 µs below the pair's offset.
    assert.ok(maxCoarse > offset - 100 - slack, `closest Date.now() reading ${offset - maxCoarse} µs below the pair`);
  });

  it('a trial start\'s pair reuses the last precise offset, and measures afresh after the wall clock was stepped (forward, back, by ms or s)', { skip: skipUnlessCi(libfaketimeMissing) }, () => {
    const dir = tmpDir();
    const steps = path.join(dir, 'faketime');
    const script = path.join(dir, 'steps.mts');
    writeFileSync(
      script,
      `import { writeFileSync } from 'node:fs';
import { startPair, wallMonoPair } from ${JSON.stringify(path.join(repoRoot, 'src/clock.ts'))};
const off = (p) => p.wallUs - p.monoUs;
// A precise pair first (retried: a preempted one is too wide to be reused, and startPair would measure afresh;
// every wall-clock read here is libfaketime reading its file, so a loaded machine makes few of them precise).
let first = wallMonoPair();
for (let i = 0; i < 300 && first.uncertaintyUs > 20; i++) first = wallMonoPair();
const reused = startPair();
const out = { first: first.uncertaintyUs, reused: off(reused) - off(first), steps: [] };
for (const step of ['+0.005', '+2', '-0.003', '-1']) {
  writeFileSync(${JSON.stringify(steps)}, step + '\\n');
  const p = startPair();
  const truth = wallMonoPair();
  // The new offset is what is reused now (once a pair is precise enough to be reused: retried under load).
  let good = truth;
  for (let i = 0; i < 300 && good.uncertaintyUs > 20; i++) good = wallMonoPair();
  const again = startPair();
  // The reused offset is the most precise pair's since the step (a wider one it agrees with does not replace it).
  out.steps.push({ step, moved: off(p) - off(first), again: good.uncertaintyUs <= 20 ? off(again) - off(good) : null, againSlack: 2 * good.uncertaintyUs + 1, vsFresh: off(p) - off(truth), slack: p.uncertaintyUs + truth.uncertaintyUs + 2 });
}
console.log(JSON.stringify(out));
`,
    );
    const r = spawnSync(process.execPath, ['--import', 'tsx', script], { cwd: repoRoot, env: faketimeEnv(steps), encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { first: number; reused: number; steps: Array<{ step: string; moved: number; again: number | null; againSlack: number; vsFresh: number; slack: number }> };
    assert.ok(out.first <= 20, `no precise pair in 300 tries (±${out.first} µs)`);
    assert.equal(out.reused, 0, 'no step: the offset is reused exactly');
    for (const s of out.steps) {
      // The pair after the step is the stepped clock's, as a fresh measurement says, not the offset from before.
      assert.ok(Math.abs(s.vsFresh) <= s.slack, `step ${s.step}: ${JSON.stringify(s)}`);
      // Each step is an offset from the real clock, which `first` read unstepped.
      assert.ok(Math.abs(s.moved - Number(s.step) * 1e6) <= s.slack + out.first, `step ${s.step}: moved ${s.moved} µs`);
      assert.ok(s.again !== null && Math.abs(s.again) <= s.againSlack, `step ${s.step}: then reused, ${JSON.stringify(s)} (again null: no precise pair in 300 tries)`);
    }
  });

  it('converts between the clocks through a pair', () => {
    const pair = { wallUs: 1_700_000_000_000_000, monoUs: 5_000_000 };
    assert.equal(monoToWallUs(5_250_000, pair), 1_700_000_000_250_000);
    assert.equal(wallToMonoUs(1_700_000_000_250_000, pair), 5_250_000);
    assert.equal(wallToMonoUs(monoToWallUs(123_456_789, pair), pair), 123_456_789);
  });
});
