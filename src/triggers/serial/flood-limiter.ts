/**
 * Flood limit for incoming lines: at most `maxPerSecond` lines are accepted in any sliding one-second
 * window (timed by their first-byte arrival). Lines beyond that are refused. To keep a flood from
 * turning into a flood of answers, only the FIRST refused line of a burst is answered (`ERR busy`);
 * the rest of the burst is dropped silently until a line is accepted again. Pure and bounded: it
 * remembers exactly `maxPerSecond` timestamps.
 */

export type Refusal = 'refuse_with_notice' | 'refuse_silently';
export type Admission = 'accept' | Refusal;

const WINDOW_US = 1_000_000;

export class FloodLimiter {
  private readonly acceptedAt: number[];
  private next = 0;
  private count = 0;
  private noticeSent = false;

  constructor(readonly maxPerSecond: number) {
    if (!Number.isInteger(maxPerSecond) || maxPerSecond < 1) throw new RangeError('maxPerSecond must be a positive integer');
    this.acceptedAt = new Array<number>(maxPerSecond).fill(0);
  }

  /**
   * Decide on a line that arrived at `monoUs`. `canTake` false (e.g. the command queue is full)
   * refuses it without using up a slot of the window, under the same one-notice-per-burst rule.
   */
  admit(monoUs: number, canTake = true): Admission {
    // acceptedAt[next] is the oldest remembered acceptance once the ring is full.
    const windowFull = this.count === this.maxPerSecond && monoUs - this.acceptedAt[this.next]! < WINDOW_US;
    if (windowFull || !canTake) {
      if (this.noticeSent) return 'refuse_silently';
      this.noticeSent = true;
      return 'refuse_with_notice';
    }
    this.acceptedAt[this.next] = monoUs;
    this.next = (this.next + 1) % this.maxPerSecond;
    if (this.count < this.maxPerSecond) this.count++;
    this.noticeSent = false;
    return 'accept';
  }
}
