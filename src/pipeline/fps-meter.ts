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

/** Bytes per second over a sliding window (the live bitrate of a stream). */
export class ByteRateMeter {
  private samples: Array<{ us: number; bytes: number }> = [];
  private sum = 0;
  constructor(private readonly windowUs = 2_000_000) {}

  add(us: number, bytes: number): void {
    this.samples.push({ us, bytes });
    this.sum += bytes;
    const cut = us - this.windowUs;
    while (this.samples.length && this.samples[0]!.us < cut) this.sum -= this.samples.shift()!.bytes;
  }

  rate(nowUs: number): number {
    if (this.samples.length < 2 || nowUs - this.samples[this.samples.length - 1]!.us > this.windowUs) return 0;
    const span = this.samples[this.samples.length - 1]!.us - this.samples[0]!.us;
    return span > 0 ? ((this.sum - this.samples[0]!.bytes) * 1e6) / span : 0;
  }

  reset(): void {
    this.samples = [];
    this.sum = 0;
  }
}
