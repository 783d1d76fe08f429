/** Restart delays for supervised helpers: doubling from initialMs up to maxMs, reset after a stable run. */
export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  /** A run that lasted this long resets the delay to initialMs. */
  stableAfterMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 500, maxMs: 30_000, stableAfterMs: 10_000 };

export class Backoff {
  private failures = 0;
  private readonly opts: BackoffOptions;

  constructor(opts: Partial<BackoffOptions> = {}) {
    this.opts = { ...DEFAULT_BACKOFF, ...opts };
  }

  /** Delay before the next try, given how long the failed run lasted. */
  next(ranForMs = 0): number {
    if (ranForMs >= this.opts.stableAfterMs) this.failures = 0;
    const delay = Math.min(this.opts.maxMs, this.opts.initialMs * 2 ** this.failures);
    this.failures++;
    return delay;
  }

  reset(): void {
    this.failures = 0;
  }
}
