import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { renderTable } from './table.ts';

/** One line of the final table. Every figure stands beside its same-run baseline, or is a ratio against it. */
export interface BenchRow {
  bench: string;
  figure: string;
  /** rigcam's figure, formatted. */
  value: string;
  /** The baseline measured in the same run ('' when the figure is a count checked against a goal). */
  baseline: string;
  ratio: string;
  /** The goal as written in the issue ('—' when none was set). */
  goal: string;
  /** Whether the goal is met; null when there is no goal. */
  ok: boolean | null;
}

export interface BenchReport {
  name: string;
  rows: BenchRow[];
  notes: string[];
  seconds: number;
  scale: number;
  error?: string;
}

export interface BenchCtx {
  scale: number;
  /** Progress to stderr, prefixed with the benchmark name and elapsed seconds. */
  log: (msg: string) => void;
  /** A temp dir removed when the benchmark ends (kept with RIGCAM_KEEP_TMP=1). */
  tmpDir: (prefix: string) => string;
}

/** RIGCAM_BENCH_SCALE: 1 = the documented full lengths; 0.2 = a fifth of every duration and trial count. */
export function benchScale(): number {
  const raw = process.env.RIGCAM_BENCH_SCALE;
  const s = raw === undefined || raw === '' ? 1 : Number(raw);
  if (!Number.isFinite(s) || s <= 0 || s > 10) throw new Error(`RIGCAM_BENCH_SCALE must be a number in (0, 10], got "${raw}"`);
  return s;
}

/** A count scaled by RIGCAM_BENCH_SCALE, never below `min`. */
export function scaled(full: number, scale: number, min: number): number {
  return Math.max(min, Math.round(full * scale));
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Run one benchmark as a script: alone it prints its own table; under bench/run.ts (RIGCAM_BENCH_RESULT_FILE set)
 * it writes its report as JSON for the combined table. Exits when done so no stray handle keeps it alive.
 */
export async function runBench(name: string, fn: (ctx: BenchCtx) => Promise<{ rows: BenchRow[]; notes: string[] }>): Promise<never> {
  const scale = benchScale();
  const t0 = performance.now();
  const dirs: string[] = [];
  const ctx: BenchCtx = {
    scale,
    log: (msg) => process.stderr.write(`[${name} ${((performance.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${msg}\n`),
    tmpDir: (prefix) => {
      const d = mkdtempSync(path.join(tmpdir(), `rigcam-bench-${prefix}-`));
      dirs.push(d);
      return d;
    },
  };
  let report: BenchReport;
  try {
    const { rows, notes } = await fn(ctx);
    report = { name, rows, notes, seconds: (performance.now() - t0) / 1000, scale };
  } catch (err) {
    const e = err as Error;
    ctx.log(`FAILED: ${e.stack ?? e.message}`);
    report = { name, rows: [], notes: [], seconds: (performance.now() - t0) / 1000, scale, error: e.message };
  }
  if (!process.env.RIGCAM_KEEP_TMP) for (const d of dirs) rmSync(d, { recursive: true, force: true });
  else for (const d of dirs) ctx.log(`kept ${d}`);
  const out = process.env.RIGCAM_BENCH_RESULT_FILE;
  if (out) writeFileSync(out, JSON.stringify(report));
  else process.stdout.write(`\n${renderTable([report])}\n\n`);
  process.exit(report.error ? 1 : 0);
}
