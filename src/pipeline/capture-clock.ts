import { PTS_HZ, PTS_WRAP } from './access-unit.ts';

const WRAP_US = (PTS_WRAP * 1e6) / PTS_HZ;

/**
 * Places unwrapped PTS on the capture clock in µs. The source stamps frames with CLOCK_MONOTONIC (or
 * BOOTTIME) modulo 2^33 ticks of 90 kHz, i.e. modulo ~26.5 h of uptime; the number of whole wraps is found
 * once per source run from the arrival time of the first frame: the capture time is the latest candidate
 * that is not after its arrival (plus slack for clock granularity).
 */
export class CaptureClock {
  private offsetUs: number | null = null;

  /** `pts` is the demuxer's unwrapped PTS (continuous within a run). */
  toCaptureUs(pts: number, arrivalUs: number): number {
    const ptsUs = Math.round((pts * 1e6) / PTS_HZ);
    if (this.offsetUs === null) {
      const k = Math.floor((arrivalUs + 2e6 - ptsUs) / WRAP_US);
      this.offsetUs = Math.max(0, k) * WRAP_US;
    }
    return ptsUs + this.offsetUs;
  }

  /** The source announced the capture time of PTS 0 (relative PTS): no wrap inference. */
  setOriginUs(originUs: number): void {
    this.offsetUs = originUs;
  }
}
