/**
 * Hardware-triggered capture (issue 18): every pulse on the camera's trigger input (the Global Shutter camera's XTR)
 * should make exactly one frame. The same pulses are counted on a GPIO `sync` input (kernel-stamped edges), so a
 * trial's pulses and its recorded frames can be matched by time: every pulse without a frame is a missing frame,
 * every frame without a pulse an extra one — each named with its time.
 *
 * A frame's capture time follows its pulse by a constant lag (the exposure the pulse sets, plus where in the frame
 * the sensor timestamp is taken); the lag is estimated from the data (the one that matches most frames) unless
 * given, and a frame belongs to a pulse when it lies within `tolerance` of pulse + lag.
 */

export interface PulseFrameOptions {
  /** Capture time − pulse onset, µs; estimated when absent. */
  lagUs?: number;
  /**
   * Largest lag considered when estimating (µs). Default: the median pulse interval — on a regular train a lag and
   * that lag plus one interval match all but the edge frames alike, and a triggered frame comes before the next
   * pulse (the pulse's low time is the exposure, the Raspberry Pi GS camera guide).
   */
  maxLagUs?: number;
  /** How far a frame may lie from pulse + lag (µs); default a quarter of the median pulse interval. */
  toleranceUs?: number;
}

export interface MissingFrame {
  /** 0-based among the trial's pulses. */
  pulse_index: number;
  pulse_mono_us: number;
}

export interface ExtraFrame {
  frame_index: number;
  capture_us: number;
  /** The pulse nearest to capture − lag and how far off it is (µs); null when there are no pulses. */
  nearest_pulse_index: number | null;
  offset_us: number | null;
}

export interface PulseFrameCheck {
  pulses: number;
  frames: number;
  matched: number;
  lag_us: number | null;
  tolerance_us: number | null;
  missing: MissingFrame[];
  extra: ExtraFrame[];
  /** |capture − (pulse + lag)| over matched frames, µs. */
  residual_us: { median: number; max: number } | null;
  ok: boolean;
}

interface Frame {
  frame_index: number;
  capture_us: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Two-pointer match of sorted frames to sorted pulses at a fixed lag. */
function matchAt(pulses: readonly number[], frames: readonly Frame[], lag: number, tol: number): { pairs: Array<[number, number]>; extra: number[] } {
  const pairs: Array<[number, number]> = [];
  const extra: number[] = [];
  let p = 0;
  for (let f = 0; f < frames.length; f++) {
    const target = frames[f]!.capture_us - lag;
    while (p < pulses.length && pulses[p]! < target - tol) p++;
    if (p < pulses.length && Math.abs(pulses[p]! - target) <= tol) {
      pairs.push([p, f]);
      p++;
    } else extra.push(f);
  }
  return { pairs, extra };
}

/** The lag that matches the most frames; ties go to the smallest residual. Candidates come from the first frames. */
function estimateLag(allPulses: readonly number[], allFrames: readonly Frame[], maxLag: number, tol: number): number | null {
  // The start of the trial decides (bounded work on a long one): its first frames and the pulses they can follow.
  const frames = allFrames.slice(0, 200);
  const from = frames[0]!.capture_us - maxLag - tol;
  const to = frames.at(-1)!.capture_us + tol;
  const pulses = allPulses.filter((t) => t >= from && t <= to);
  let best: { lag: number; n: number; resid: number } | null = null;
  const tried = new Set<number>();
  for (const fr of frames.slice(0, 12)) {
    for (const pu of pulses) {
      const lag = fr.capture_us - pu;
      if (lag < 0) break;
      if (lag > maxLag || tried.has(lag)) continue;
      tried.add(lag);
      const { pairs } = matchAt(pulses, frames, lag, tol);
      const resid = pairs.reduce((s, [pi, fi]) => s + Math.abs(frames[fi]!.capture_us - lag - pulses[pi]!), 0);
      if (!best || pairs.length > best.n || (pairs.length === best.n && resid < best.resid)) best = { lag, n: pairs.length, resid };
    }
  }
  if (!best) return null;
  // Refine: the median offset of the matched frames (the candidate was one frame's own offset).
  const { pairs } = matchAt(pulses, frames, best.lag, tol);
  return Math.round(median(pairs.map(([pi, fi]) => frames[fi]!.capture_us - pulses[pi]!)));
}

/** Pulses (onset times, CLOCK_MONOTONIC µs) against frames (capture times on the same clock). */
export function checkPulseFrames(pulseUs: readonly number[], frameList: readonly Frame[], o: PulseFrameOptions = {}): PulseFrameCheck {
  const pulses = [...pulseUs].sort((a, b) => a - b);
  const frames = [...frameList].sort((a, b) => a.capture_us - b.capture_us);
  const intervals = pulses.slice(1).map((t, i) => t - pulses[i]!);
  const tol = o.toleranceUs ?? (intervals.length ? median(intervals) / 4 : null);
  const lag = o.lagUs ?? (tol !== null && frames.length ? estimateLag(pulses, frames, o.maxLagUs ?? median(intervals), tol) : null);
  if (lag === null || tol === null) {
    // Nothing to match against: every pulse is a missing frame, every frame an extra one.
    return {
      pulses: pulses.length,
      frames: frames.length,
      matched: 0,
      lag_us: lag,
      tolerance_us: tol,
      missing: pulses.map((t, i) => ({ pulse_index: i, pulse_mono_us: t })),
      extra: frames.map((f) => ({ frame_index: f.frame_index, capture_us: f.capture_us, nearest_pulse_index: null, offset_us: null })),
      residual_us: null,
      ok: pulses.length === 0 && frames.length === 0,
    };
  }
  const { pairs, extra } = matchAt(pulses, frames, lag, tol);
  const matchedPulses = new Set(pairs.map(([pi]) => pi));
  const nearest = (t: number): number => {
    let lo = 0;
    let hi = pulses.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (pulses[mid]! < t) lo = mid + 1;
      else hi = mid;
    }
    return lo > 0 && Math.abs(pulses[lo - 1]! - t) <= Math.abs(pulses[lo]! - t) ? lo - 1 : lo;
  };
  const resid = pairs.map(([pi, fi]) => Math.abs(frames[fi]!.capture_us - lag - pulses[pi]!));
  return {
    pulses: pulses.length,
    frames: frames.length,
    matched: pairs.length,
    lag_us: lag,
    tolerance_us: Math.round(tol),
    missing: pulses.flatMap((t, i) => (matchedPulses.has(i) ? [] : [{ pulse_index: i, pulse_mono_us: t }])),
    extra: extra.map((fi) => {
      const f = frames[fi]!;
      const n = pulses.length ? nearest(f.capture_us - lag) : null;
      return { frame_index: f.frame_index, capture_us: f.capture_us, nearest_pulse_index: n, offset_us: n === null ? null : f.capture_us - lag - pulses[n]! };
    }),
    residual_us: resid.length ? { median: median(resid), max: Math.max(...resid) } : null,
    ok: pairs.length === pulses.length && pairs.length === frames.length,
  };
}

export interface TrialPulseFrameCheck extends PulseFrameCheck {
  /** Unmatched pulses whose frame would have come within the tolerance of the stop: not judged (see below). */
  unjudged_at_stop: number;
}

/**
 * One trial's check, on the frame clock: frames captured in [from, to) (the trigger to the stop; the recording cuts at
 * the stop instant, so a frame at or after it is never in the file) against the pulses whose frames belong there.
 * Matching runs on both sides widened by the tolerance, then each pair is judged by its frame's time, so a frame a
 * few µs inside the window whose pulse + lag falls a few µs outside (or the reverse) is neither extra nor missing.
 * A pulse without a frame whose frame was due within the tolerance before the stop is not called missing: that frame
 * may have been captured just after the stop (counted in `unjudged_at_stop`). `lagUs` and `toleranceUs` are the
 * recording's (from checkPulseFrames over all of it).
 */
export function checkTrialPulseFrames(
  pulseUs: readonly number[],
  frameList: readonly Frame[],
  o: { fromUs: number; toUs: number; lagUs: number; toleranceUs: number },
): TrialPulseFrameCheck {
  const { fromUs: from, toUs: to, lagUs: lag, toleranceUs: tol } = o;
  const pulses = [...pulseUs].filter((p) => p + lag >= from - tol && p + lag < to + tol).sort((a, b) => a - b);
  const frames = [...frameList].filter((f) => f.capture_us >= from - tol && f.capture_us < to).sort((a, b) => a.capture_us - b.capture_us);
  const all = checkPulseFrames(pulses, frames, { lagUs: lag, toleranceUs: tol });
  const inTrial = (captureUs: number): boolean => captureUs >= from && captureUs < to;
  const { pairs } = matchAt(pulses, frames, lag, tol);
  const kept = pairs.filter(([, fi]) => inTrial(frames[fi]!.capture_us));
  const missing = all.missing.filter((m) => m.pulse_mono_us + lag >= from && m.pulse_mono_us + lag < to - tol);
  const unjudged = all.missing.filter((m) => m.pulse_mono_us + lag >= to - tol && m.pulse_mono_us + lag < to).length;
  const extra = all.extra.filter((x) => inTrial(x.capture_us));
  const resid = kept.map(([pi, fi]) => Math.abs(frames[fi]!.capture_us - lag - pulses[pi]!));
  return {
    pulses: kept.length + missing.length,
    frames: frames.filter((f) => inTrial(f.capture_us)).length,
    matched: kept.length,
    lag_us: lag,
    tolerance_us: Math.round(tol),
    missing,
    extra,
    residual_us: resid.length ? { median: median(resid), max: Math.max(...resid) } : null,
    ok: missing.length === 0 && extra.length === 0,
    unjudged_at_stop: unjudged,
  };
}
