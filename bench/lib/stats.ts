/** Nearest-rank percentile of unsorted samples (p in 0..100). */
export function percentile(samples: readonly number[], p: number): number {
  if (!samples.length) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

export function median(samples: readonly number[]): number {
  return percentile(samples, 50);
}

/** A number with a fixed count of decimals, or '—' when it is not finite. */
export function fixed(n: number, digits: number): string {
  return Number.isFinite(n) ? n.toFixed(digits) : '—';
}

/** Milliseconds from microseconds, 2 decimals. */
export function ms(us: number): string {
  return `${fixed(us / 1000, 2)} ms`;
}

export function mib(bytes: number): string {
  return `${fixed(bytes / 1048576, 1)} MiB`;
}

export function count(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}
