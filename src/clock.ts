/**
 * The one owner of clock reads. Frame capture times, trigger times and markers are all on CLOCK_MONOTONIC
 * (process.hrtime is CLOCK_MONOTONIC on Linux, the clock of V4L2 buffer and GPIO event timestamps); the wall clock
 * only enters through a wall↔monotonic pair. Nothing else in src/ calls process.hrtime (test/architecture guards it).
 */

const NS_PER_US = 1000n;

/** CLOCK_MONOTONIC now, in integer microseconds. */
export function monoNowUs(): number {
  return Number(process.hrtime.bigint() / NS_PER_US);
}

/** CLOCK_MONOTONIC now, in nanoseconds (a bigint: a box's uptime in ns passes 2^53 after 104 days). */
export function monoNowNs(): bigint {
  return process.hrtime.bigint();
}

/** One instant read on both clocks. */
export interface WallMonoPair {
  /** CLOCK_REALTIME, µs since the epoch. */
  wallUs: number;
  /** CLOCK_MONOTONIC, µs. */
  monoUs: number;
  /** Half-width of the interval the instant is known to lie in, µs (typically well under 1 µs, unless preempted). */
  uncertaintyUs: number;
}

/** One busy-wait for Date.now()'s next millisecond edge (≤ 1 ms plus a read), bracketed by monotonic reads. */
function edgePair(): { wallUs: number; monoNs: bigint; widthNs: bigint } {
  let before = process.hrtime.bigint();
  const start = Date.now();
  for (;;) {
    const b = process.hrtime.bigint();
    const w = Date.now();
    const a = process.hrtime.bigint();
    if (w !== start) {
      // The realtime clock crossed w ms after the previous Date.now() (which read after `before`) and before
      // this one returned (before `a`): the edge lies in [before, a] on the monotonic clock.
      return { wallUs: w * 1000, monoNs: (before + a) / 2n, widthNs: a - before };
    }
    before = b;
  }
}

/**
 * A precise wall↔monotonic pair: the instant Date.now() ticks to a new millisecond is the exact wall time
 * `ms × 1000 µs`; its monotonic time is bracketed by hrtime reads a fraction of a µs apart. Date.now() alone is
 * up to 1 ms off. A read preempted by the scheduler widens the bracket, so a wide one is retried (at most
 * `maxTries`, each ≤ ~1 ms of busy-waiting; one or two on an idle box) and the narrowest kept. Call it per trial
 * or recording, not per frame.
 */
export function wallMonoPair(maxTries = 8, goodEnoughUs = 20): WallMonoPair {
  let best = edgePair();
  for (let i = 1; i < maxTries && Number(best.widthNs) / 2000 > goodEnoughUs; i++) {
    const p = edgePair();
    if (p.widthNs < best.widthNs) best = p;
  }
  return { wallUs: best.wallUs, monoUs: Number((best.monoNs + NS_PER_US / 2n) / NS_PER_US), uncertaintyUs: Number(best.widthNs) / 2000 };
}

/** CLOCK_REALTIME − CLOCK_MONOTONIC in µs, from a precise pair (busy-waits ~1 ms, more on a loaded box). */
export function wallMinusMonoUs(): number {
  const p = wallMonoPair();
  return p.wallUs - p.monoUs;
}

/** A monotonic time (µs) as wall-clock µs through a pair. */
export function monoToWallUs(monoUs: number, pair: Pick<WallMonoPair, 'wallUs' | 'monoUs'>): number {
  return pair.wallUs + (monoUs - pair.monoUs);
}

/** A wall-clock time (µs) as monotonic µs through a pair. */
export function wallToMonoUs(wallUs: number, pair: Pick<WallMonoPair, 'wallUs' | 'monoUs'>): number {
  return pair.monoUs + (wallUs - pair.wallUs);
}

export const usToSeconds = (us: number): number => us / 1e6;
export const secondsToUs = (s: number): number => Math.round(s * 1e6);
