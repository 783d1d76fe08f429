/** Measured frame rate over a sliding window of capture times (not the configured rate). */
export class FpsMeter {
  private times: number[] = [];
  constructor(private readonly windowUs = 2_000_000) {}

  add(us: number): void {
    this.times.push(us);
    const cut = us - this.windowUs;
    let i = 0;
    while (i < this.times.length && this.times[i]! < cut) i++;
    if (i) this.times.splice(0, i);
  }

  /** Frames per second over the window, 0 when fewer than two frames or stale (no frame for a window). */
  fps(nowUs: number): number {
    const n = this.times.length;
    if (n < 2) return 0;
    const last = this.times[n - 1]!;
    if (nowUs - last > this.windowUs) return 0;
    return ((n - 1) * 1e6) / (last - this.times[0]!);
  }

  reset(): void {
    this.times = [];
  }
}
