/**
 * The one restart delay of every supervised thing: exponential from initialMs up to maxMs, jittered downwards
 * (so boxes and children that failed together do not retry in lock-step), reset after a healthy run.
 */
export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  /** A run at least this long was healthy: the next delay starts again from initialMs. */
  healthyAfterMs: number;
  /** Fraction of the delay taken off at random (0 = none, 0.2 = delay in [0.8·d, d] after rounding to whole ms). */
  jitter: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 500, maxMs: 30_000, healthyAfterMs: 10_000, jitter: 0.2 };

export class Backoff {
  private failures = 0;
  readonly opts: BackoffOptions;

  constructor(
    opts: Partial<BackoffOptions> = {},
    private readonly random: () => number = Math.random,
  ) {
    this.opts = { ...DEFAULT_BACKOFF, ...opts };
    if (!(this.opts.jitter >= 0 && this.opts.jitter < 1)) throw new RangeError(`backoff jitter must be in [0, 1): ${this.opts.jitter}`);
  }

  /** Delay before the next try, given how long the failed run lasted (0 when it never ran). */
  next(ranForMs = 0): number {
    if (ranForMs >= this.opts.healthyAfterMs) this.failures = 0;
    const base = Math.min(this.opts.maxMs, this.opts.initialMs * 2 ** Math.min(this.failures, 30));
    this.failures++;
    return Math.max(1, Math.round(base * (1 - this.opts.jitter * this.random())));
  }

  reset(): void {
    this.failures = 0;
  }
}
