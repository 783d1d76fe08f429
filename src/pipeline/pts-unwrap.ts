import { PTS_WRAP } from './access-unit.ts';

const HALF = PTS_WRAP / 2;

/** Reduces any number to a raw 33-bit timestamp in [0, 2^33). */
function toRaw(value: number): number {
  const r = value % PTS_WRAP;
  return r < 0 ? r + PTS_WRAP : r;
}

/**
 * The unwrapped value congruent to `raw` (mod 2^33) that lies nearest to `reference` (itself unwrapped).
 * A step of less than half the range either way is taken as real movement, so B-frame reordering (a
 * small step back) stays a step back, and a large step back is a wrap forward.
 */
export function unwrapNear(raw: number, reference: number): number {
  let delta = toRaw(raw) - toRaw(reference);
  if (delta >= HALF) delta -= PTS_WRAP;
  else if (delta < -HALF) delta += PTS_WRAP;
  return reference + delta;
}

/**
 * Turns a sequence of raw 33-bit 90 kHz timestamps (PTS or DTS) into a continuous count that keeps
 * rising across wraps (one every ~26.5 h). The first value passes through unchanged; each later
 * value is placed nearest the previous result.
 */
export class PtsUnwrapper {
  private prev: number | null = null;

  /** Feeds one raw value and returns it unwrapped. */
  unwrap(raw: number): number {
    const out = this.prev === null ? toRaw(raw) : unwrapNear(raw, this.prev);
    this.prev = out;
    return out;
  }

  /** The last unwrapped value returned, or null before the first. */
  get last(): number | null {
    return this.prev;
  }

  /** Forgets the history: the next value passes through unchanged again. */
  reset(): void {
    this.prev = null;
  }
}
