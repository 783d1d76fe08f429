import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { monoNowUs, monoToWallUs, wallMonoPair, wallToMonoUs } from '../../src/clock.ts';

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

  it('converts between the clocks through a pair', () => {
    const pair = { wallUs: 1_700_000_000_000_000, monoUs: 5_000_000 };
    assert.equal(monoToWallUs(5_250_000, pair), 1_700_000_000_250_000);
    assert.equal(wallToMonoUs(1_700_000_000_250_000, pair), 5_250_000);
    assert.equal(wallToMonoUs(monoToWallUs(123_456_789, pair), pair), 123_456_789);
  });
});
