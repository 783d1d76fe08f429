/** A line's state change after debounce and minimum pulse width, at the time it really began. */
export interface LogicalEdge {
  active: boolean;
  monoUs: number;
}

export interface EdgeFilterOptions {
  /** Software debounce: a change must hold this long (0: none). Skipped for kernel-debounced edges. */
  debounceUs: number;
  /** Active pulses shorter than this are dropped (0: none). */
  minPulseUs: number;
  /**
   * Extra wait before a timer decides that no further edge is coming, for events still on
   * their way through the pipe. Decisions use the kernel timestamps whenever an edge arrives.
   */
  settleMs: number;
}

/**
 * Turns one line's raw edges into logical edges. Stage 1 (debounce): a burst of edges counts
 * as one change, stamped with the burst's first edge, once the line has held its new level
 * for the debounce time; a burst that ends where it began is nothing. Stage 2 (minimum
 * pulse): an active level is passed on only once it has lasted minPulseUs, still stamped with
 * its start; a shorter pulse is dropped with its end.
 */
export class EdgeFilter {
  private stable = false;
  private raw = false;
  private burst?: { startUs: number; lastUs: number };
  private burstTimer?: NodeJS.Timeout;
  private emitted = false;
  private pulse?: { startUs: number };
  private pulseTimer?: NodeJS.Timeout;
  private disposed = false;

  constructor(
    private readonly opts: EdgeFilterOptions,
    private readonly onEdge: (edge: LogicalEdge) => void,
  ) {}

  push(active: boolean, monoUs: number): void {
    if (this.disposed) return;
    const debounceUs = this.opts.debounceUs;
    if (debounceUs === 0) {
      this.endBurst();
      this.raw = active;
      if (active !== this.stable) {
        this.stable = active;
        this.pulseStage(active, monoUs);
      }
      return;
    }
    // An edge that comes debounceUs or more after the last one closes the burst before it.
    if (this.burst && monoUs - this.burst.lastUs >= debounceUs) this.endBurst();
    if (this.burst) {
      this.burst.lastUs = monoUs;
    } else {
      // Same level as the settled one: a pulse too short to be seen; nothing changed.
      if (active === this.stable) return;
      this.burst = { startUs: monoUs, lastUs: monoUs };
    }
    this.raw = active;
    clearTimeout(this.burstTimer);
    this.burstTimer = setTimeout(() => this.endBurst(), debounceUs / 1000 + this.opts.settleMs);
  }

  dispose(): void {
    this.disposed = true;
    clearTimeout(this.burstTimer);
    clearTimeout(this.pulseTimer);
  }

  private endBurst(): void {
    clearTimeout(this.burstTimer);
    const burst = this.burst;
    if (!burst) return;
    this.burst = undefined;
    if (this.raw === this.stable) return;
    this.stable = this.raw;
    this.pulseStage(this.raw, burst.startUs);
  }

  private pulseStage(active: boolean, monoUs: number): void {
    const { minPulseUs } = this.opts;
    if (minPulseUs === 0) return this.emit(active, monoUs);
    if (active) {
      if (this.emitted || this.pulse) return;
      this.pulse = { startUs: monoUs };
      this.armPulseTimer(minPulseUs / 1000);
      return;
    }
    const pulse = this.pulse;
    if (pulse) {
      clearTimeout(this.pulseTimer);
      this.pulse = undefined;
      if (monoUs - pulse.startUs < minPulseUs) return; // too short: neither start nor end
      this.emit(true, pulse.startUs);
    }
    this.emit(false, monoUs);
  }

  private armPulseTimer(ms: number): void {
    clearTimeout(this.pulseTimer);
    this.pulseTimer = setTimeout(() => this.confirmPulse(), ms + this.opts.settleMs);
  }

  private confirmPulse(): void {
    const pulse = this.pulse;
    if (!pulse || this.disposed) return;
    // A pending debounce burst back to inactive that began within the minimum width decides first.
    if (this.burst && !this.raw && this.burst.startUs - pulse.startUs < this.opts.minPulseUs) {
      return this.armPulseTimer(this.opts.debounceUs / 1000);
    }
    this.pulse = undefined;
    this.emit(true, pulse.startUs);
  }

  private emit(active: boolean, monoUs: number): void {
    if (active === this.emitted) return;
    this.emitted = active;
    this.onEdge({ active, monoUs });
  }
}
