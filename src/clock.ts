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

const GOOD_PAIR_US = 20;
/** CLOCK_REALTIME − CLOCK_MONOTONIC, µs, as a pair measured it, with that pair's uncertainty. */
export interface Offset {
  offsetUs: number;
  uncertaintyUs: number;
}

/** The offset of the most precise pair since the clock was last seen stepped (offsetAfter). */
let lastOffset: Offset | null = null;
/** When the last pair was measured (CLOCK_MONOTONIC µs). */
let lastPairAtUs = -Infinity;

/** Atomics.wait on this is a sleep of a fraction of a millisecond (nothing ever notifies it). */
const sleeper = new Int32Array(new SharedArrayBuffer(4));
/** How long before a predicted edge the sleep ends: Atomics.wait overshoots by 0.1–0.2 ms on a quiet box. */
const WAKE_EARLY_US = 300;

/**
 * One wait for Date.now()'s next millisecond edge (≤ 1 ms plus a read), bracketed by monotonic reads. When the last
 * pair's offset predicts the edge, most of the wait is a sleep and only its last ~0.3 ms a busy-wait: every read in
 * the busy loop allocates (a BigInt, a heap number), and 0.5–1 ms of spinning per pair was 23 % of everything the
 * service allocated under trial churn, garbage whose scavenges land on the trigger path (issue 17).
 */
function edgePair(): { wallUs: number; monoNs: bigint; widthNs: bigint } {
  const known = lastOffset;
  if (known) {
    // The next edge on the monotonic clock, if the wall clock was not stepped since the last pair (a step puts it
    // outside the next millisecond: then the wait is spun as without a prediction). A sleep that overshoots the edge
    // aims at the one after, once: it costs time, not spinning.
    let edgeUs = (Date.now() + 1) * 1000 - known.offsetUs;
    for (let i = 0; i < 2; i++) {
      const untilUs = edgeUs - monoNowUs() - WAKE_EARLY_US;
      if (untilUs >= 1000) break;
      if (untilUs > 0) Atomics.wait(sleeper, 0, 0, untilUs / 1000);
      if (edgeUs - monoNowUs() > 20) break;
      edgeUs += 1000;
    }
  }
  // `lo` is always read before a Date.now() that still returned `start`; `hi` after the one that did not.
  let lo = process.hrtime.bigint();
  const start = Date.now();
  for (;;) {
    const h = process.hrtime.bigint();
    const w = Date.now();
    if (w !== start) {
      const hi = process.hrtime.bigint();
      return { wallUs: w * 1000, monoNs: (lo + hi) / 2n, widthNs: hi - lo };
    }
    lo = h;
  }
}

/**
 * A precise wall↔monotonic pair: the instant Date.now() ticks to a new millisecond is the exact wall time
 * `ms × 1000 µs`; its monotonic time is bracketed by hrtime reads a fraction of a µs apart. Date.now() alone is
 * up to 1 ms off. A read preempted by the scheduler widens the bracket, so a wide one is retried (at most
 * `maxTries`, each a wait of ≤ ~1 ms, mostly asleep once an offset is known; one or two on an idle box) and the narrowest kept. Call it per trial
 * or recording, not per frame.
 */
export function wallMonoPair(maxTries = 8, goodEnoughUs = GOOD_PAIR_US): WallMonoPair {
  let best = edgePair();
  for (let i = 1; i < maxTries && Number(best.widthNs) / 2000 > goodEnoughUs; i++) {
    const p = edgePair();
    if (p.widthNs < best.widthNs) best = p;
  }
  const pair = { wallUs: best.wallUs, monoUs: Number((best.monoNs + NS_PER_US / 2n) / NS_PER_US), uncertaintyUs: Number(best.widthNs) / 2000 };
  lastOffset = offsetAfter(lastOffset, pair);
  lastPairAtUs = monoNowUs();
  return pair;
}

/**
 * The offset to keep after a new pair. A pair less precise than the known offset and consistent with it (the clock
 * was not stepped between them, as far as the two can tell) leaves the known one: else a preempted refresh between
 * trials would make the next start measure its own pair, on the trigger path. A step shows as an inconsistent pair,
 * which replaces it however wide it is.
 */
export function offsetAfter(known: Offset | null, pair: WallMonoPair): Offset {
  const offsetUs = pair.wallUs - pair.monoUs;
  if (known && pair.uncertaintyUs > known.uncertaintyUs && Math.abs(offsetUs - known.offsetUs) <= pair.uncertaintyUs + known.uncertaintyUs + 1) return known;
  return { offsetUs, uncertaintyUs: pair.uncertaintyUs };
}

/**
 * A pair for a trial start, without the edge's wait on the trigger path (up to 1 ms, several ms when the wait is
 * preempted and retried). CLOCK_REALTIME − CLOCK_MONOTONIC changes only when the wall clock is stepped
 * (settimeofday, `date -s`, chrony's makestep, a leap second): NTP slewing moves both clocks alike (clock_gettime(2)).
 * So the last precise pair's offset still holds unless a step happened since, and a step shows: Date.now(), read
 * now between two monotonic reads, falls outside the millisecond the offset predicts. Then a fresh pair is measured
 * here. What this cannot see is a step of less than a millisecond, which neither chrony nor systemd-timesyncd makes
 * (they slew offsets under their step threshold, 1 s and 0.4 s by default). `wallMonoPair()` measures afresh (the
 * box does so off the trigger path: as it starts, and after every trial).
 */
export function startPair(): WallMonoPair {
  const known = lastOffset;
  if (known && known.uncertaintyUs <= GOOD_PAIR_US) {
    const before = monoNowUs();
    const ms = Date.now();
    const after = monoNowUs();
    // Date.now() is the wall time floored to the ms, read at some instant t in [before, after]: the offset holds
    // if some t there maps into [ms, ms + 1) ms, give or take the pair's uncertainty and the µs rounding.
    const slack = known.uncertaintyUs + 1;
    if (after + known.offsetUs + slack >= ms * 1000 && before + known.offsetUs - slack < ms * 1000 + 1000)
      return { wallUs: after + known.offsetUs, monoUs: after, uncertaintyUs: known.uncertaintyUs };
  }
  return wallMonoPair();
}

/**
 * The offset startPair() reuses, measured again between trials (two tries: a wide pair only means the next start
 * checks and reuses the last precise one). At most every `minIntervalUs`: the offset changes only by a step, which
 * a start sees anyway, so trials seconds apart refresh it after each one while a churn of trials per second does not
 * wait ~1 ms per trial for it. Returns whether it measured.
 */
export function refreshPair(minIntervalUs = 5_000_000): boolean {
  if (monoNowUs() - lastPairAtUs < minIntervalUs) return false;
  wallMonoPair(2);
  return true;
}

/** CLOCK_REALTIME − CLOCK_MONOTONIC in µs, from a precise pair (waits up to ~1 ms for the edge, more on a loaded box). */
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
