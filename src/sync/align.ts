/**
 * Aligning sync pulse trains (issue 18), in the manner of pyControl's Rsync: two recordings of the same train of
 * random-interval pulses, each on its own clock, are matched by their inter-pulse intervals (a run of consecutive
 * intervals is a fingerprint no other place in a random train has), then a straight line is fitted through the
 * matched pulse pairs by least squares: `box = ref · (1 + drift) + offset`. A missing or extra pulse breaks only the
 * windows that contain it. Pure functions: times are µs on each clock, as numbers.
 */

export interface AlignOptions {
  /** Intervals of the two trains agree within this (µs): timestamp noise plus the drift over one interval. */
  toleranceUs: number;
  /** Consecutive intervals that must all agree for a window to match. */
  window: number;
  /** Fewer matched pulses than this is refused. */
  minPulses: number;
  /** Windows this far apart in offset (µs) belong to different alignments. */
  clusterGapUs: number;
}

export const DEFAULT_ALIGN: AlignOptions = { toleranceUs: 3000, window: 5, minPulses: 10, clusterGapUs: 10_000 };

export interface PulsePair {
  refUs: number;
  boxUs: number;
  /** Measured box time minus the fitted one (µs). */
  residualUs: number;
}

export interface AlignFit {
  /** box = ref · (1 + drift_ppm·1e-6) + offset_us */
  offsetUs: number;
  driftPpm: number;
  /** Matched pulses, with their residuals. */
  pairs: PulsePair[];
  residualMaxUs: number;
  residualRmsUs: number;
  /** Pulses of each train left without a partner (missing on the other side, or extra). */
  unmatchedRef: number;
  unmatchedBox: number;
  /** Range of the matched pulses on the box's clock (µs): conversions outside it are extrapolations. */
  boxSpanUs: [number, number];
}

/** Why a match was refused: a message a user can act on. */
export class AlignError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AlignError';
  }
}

/** A box time (µs) on the reference clock, through a fit. */
export function toReferenceUs(fit: Pick<AlignFit, 'offsetUs' | 'driftPpm'>, boxUs: number): number {
  return (boxUs - fit.offsetUs) / (1 + fit.driftPpm * 1e-6);
}

/** Least squares line y = a + b·x, centred for precision (times are ~1e9-1e13 µs). */
function fitLine(xs: readonly number[], ys: readonly number[]): { a: number; b: number } {
  const n = xs.length;
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) {
    mx += xs[i]!;
    my += ys[i]!;
  }
  mx /= n;
  my /= n;
  let sxx = 0;
  let sxy = 0;
  for (let i = 0; i < n; i++) {
    const dx = xs[i]! - mx;
    sxx += dx * dx;
    sxy += dx * (ys[i]! - my);
  }
  const b = sxx > 0 ? sxy / sxx : 1;
  return { a: my - b * mx, b };
}

function intervals(t: readonly number[]): number[] {
  const out: number[] = [];
  for (let i = 1; i < t.length; i++) out.push(t[i]! - t[i - 1]!);
  return out;
}

interface WindowMatch {
  i: number;
  j: number;
  offsetUs: number;
}

/** Every place where `window` consecutive intervals of ref and box agree within the tolerance. */
function matchWindows(ref: readonly number[], box: readonly number[], o: AlignOptions): WindowMatch[] {
  const ir = intervals(ref);
  const ib = intervals(box);
  const k = o.window;
  // Box intervals sorted, to find the candidates for each ref interval by binary search.
  const order = ib.map((_, j) => j).sort((x, y) => ib[x]! - ib[y]!);
  const sorted = order.map((j) => ib[j]!);
  const lowerBound = (v: number): number => {
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (sorted[mid]! < v) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  const out: WindowMatch[] = [];
  const cap = 200_000; // a train without distinct intervals matches everywhere: enough to call it ambiguous
  for (let i = 0; i + k <= ir.length; i++) {
    for (let p = lowerBound(ir[i]! - o.toleranceUs); p < sorted.length && sorted[p]! <= ir[i]! + o.toleranceUs; p++) {
      const j = order[p]!;
      if (j + k > ib.length) continue;
      let ok = true;
      for (let t = 1; t < k && ok; t++) ok = Math.abs(ir[i + t]! - ib[j + t]!) <= o.toleranceUs;
      if (ok) out.push({ i, j, offsetUs: box[j]! - ref[i]! });
      if (out.length >= cap) return out;
    }
  }
  return out;
}

/** Windows grouped by offset: sorted, a new group wherever consecutive offsets are more than the gap apart. */
function clusters(matches: WindowMatch[], gapUs: number): WindowMatch[][] {
  const sorted = [...matches].sort((a, b) => a.offsetUs - b.offsetUs);
  const out: WindowMatch[][] = [];
  for (const m of sorted) {
    const last = out.at(-1);
    if (last && m.offsetUs - last.at(-1)!.offsetUs <= gapUs) last.push(m);
    else out.push([m]);
  }
  return out.sort((a, b) => b.length - a.length);
}

/** Pulses of the box paired one to one with the reference pulse nearest the line's prediction, within tolerance. */
function pairUp(ref: readonly number[], box: readonly number[], line: { a: number; b: number }, tolUs: number): Array<[number, number]> {
  // line: box = a + b·ref, so ref = (box − a) / b
  const pairs: Array<[number, number]> = [];
  const used = new Set<number>();
  let r = 0;
  for (let j = 0; j < box.length; j++) {
    const want = (box[j]! - line.a) / line.b;
    while (r + 1 < ref.length && ref[r + 1]! <= want) r++;
    let best = -1;
    for (const c of [r, r + 1]) {
      if (c < 0 || c >= ref.length || used.has(c)) continue;
      if (Math.abs(ref[c]! - want) <= tolUs && (best < 0 || Math.abs(ref[c]! - want) < Math.abs(ref[best]! - want))) best = c;
    }
    if (best >= 0) {
      used.add(best);
      pairs.push([ref[best]!, box[j]!]);
    }
  }
  return pairs;
}

/**
 * Align a box's pulse onsets (µs, its clock) to the reference's (µs, the reference clock). Refuses, with the reason,
 * a train too short to match, one whose intervals match in more than one place (a fixed-rate train), or one that
 * matches nowhere.
 */
export function alignTrains(refIn: readonly number[], boxIn: readonly number[], opts: Partial<AlignOptions> = {}): AlignFit {
  const o = { ...DEFAULT_ALIGN, ...opts };
  const ref = [...refIn].sort((a, b) => a - b);
  const box = [...boxIn].sort((a, b) => a - b);
  const need = Math.max(o.minPulses, o.window + 1);
  if (ref.length < need || box.length < need)
    throw new AlignError(`too few pulses to align: ${ref.length} on the reference, ${box.length} on the box (at least ${need} each)`);
  const matches = matchWindows(ref, box, o);
  if (!matches.length)
    throw new AlignError(`no run of ${o.window} consecutive intervals agrees within ${o.toleranceUs / 1000} ms: not the same pulse train (or a wrong line)`);
  const groups = clusters(matches, o.clusterGapUs);
  const best = groups[0]!;
  const second = groups[1];
  if (second && second.length * 2 >= best.length)
    throw new AlignError(
      `ambiguous match: ${groups.length} alignments fit the intervals (the best two by ${best.length} and ${second.length} windows, ` +
        `${((second[0]!.offsetUs - best[0]!.offsetUs) / 1000).toFixed(3)} ms apart). A fixed-rate train has no distinguishing intervals: use random intervals (sync_out pattern random)`,
    );
  // A first line through the pulses of the agreeing windows, then every pulse paired by it, fitted again.
  const xs: number[] = [];
  const ys: number[] = [];
  for (const m of best) for (let t = 0; t <= o.window; t++) {
    xs.push(ref[m.i + t]!);
    ys.push(box[m.j + t]!);
  }
  let line = fitLine(xs, ys);
  let pairs: Array<[number, number]> = [];
  for (let round = 0; round < 3; round++) {
    pairs = pairUp(ref, box, line, o.toleranceUs);
    if (pairs.length < 2) break;
    line = fitLine(pairs.map((p) => p[0]), pairs.map((p) => p[1]));
  }
  if (pairs.length < o.minPulses) throw new AlignError(`too few pulses matched: ${pairs.length} (at least ${o.minPulses})`);
  const withRes = pairs.map(([r, b]) => ({ refUs: r, boxUs: b, residualUs: b - (line.a + line.b * r) }));
  const res = withRes.map((p) => Math.abs(p.residualUs));
  return {
    offsetUs: line.a,
    driftPpm: (line.b - 1) * 1e6,
    pairs: withRes,
    residualMaxUs: Math.max(...res),
    residualRmsUs: Math.sqrt(res.reduce((s, v) => s + v * v, 0) / res.length),
    unmatchedRef: ref.length - pairs.length,
    unmatchedBox: box.length - pairs.length,
    boxSpanUs: [withRes[0]!.boxUs, withRes.at(-1)!.boxUs],
  };
}
