/**
 * `npm run bench`: every benchmark in sequence, each in its own process (its memory and CPU figures are its own),
 * then one table. RIGCAM_BENCH_SCALE=0.2 shortens every duration and trial count; RIGCAM_BENCH_ONLY=churn,api-load
 * runs a subset; RIGCAM_BENCH_JSON=<file> also writes the reports as JSON; RIGCAM_BENCH_RELEASE=<dir> makes
 * cold-start and memory measure that release instead of building one. Not part of `npm test` or CI.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchScale, type BenchReport } from './lib/harness.ts';
import { renderTable } from './lib/table.ts';

const here = path.dirname(fileURLToPath(import.meta.url));

/** Name (script bench/<name>.ts) and its expected seconds at scale 1, for the time-out (3x plus a margin). */
const BENCHES: Array<[string, number]> = [
  ['ingest', 10],
  ['reconcile', 90],
  ['quality-series', 40],
  ['trigger-latency', 45],
  ['api-load', 30],
  ['session-scale', 60],
  ['churn', 230],
  ['high-rate', 320],
  ['pipeline-overhead', 180],
  ['cold-start', 60],
  ['memory', 700],
];

let current: ChildProcess | null = null;
function killCurrent(signal: NodeJS.Signals): void {
  // The child leads its own process group: its ffmpeg and socat children go with it.
  if (current?.pid && current.exitCode === null) {
    try {
      process.kill(-current.pid, signal);
    } catch {
      /* already gone */
    }
  }
}
for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.on(sig, () => {
    killCurrent('SIGKILL');
    process.exit(130);
  });

function runOne(name: string, expectedS: number, scale: number, resultFile: string): Promise<BenchReport> {
  const t0 = performance.now();
  const timeoutS = Math.round(expectedS * Math.max(scale, 0.1) * 3 + 120);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', path.join(here, `${name}.ts`)], {
      env: { ...process.env, RIGCAM_BENCH_RESULT_FILE: resultFile },
      stdio: ['ignore', 'inherit', 'inherit'],
      detached: true,
    });
    current = child;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killCurrent('SIGTERM');
      setTimeout(() => killCurrent('SIGKILL'), 5000).unref();
    }, timeoutS * 1000);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      current = null;
      const seconds = (performance.now() - t0) / 1000;
      if (existsSync(resultFile)) {
        const report = JSON.parse(readFileSync(resultFile, 'utf8')) as BenchReport;
        rmSync(resultFile);
        resolve(report);
        return;
      }
      const why = timedOut ? `timed out after ${timeoutS} s` : `exited ${code ?? signal} without a result`;
      resolve({ name, rows: [], notes: [], seconds, scale, error: why });
    });
  });
}

const scale = benchScale();
const only = (process.env.RIGCAM_BENCH_ONLY ?? '').split(',').map((s) => s.trim()).filter(Boolean);
const unknown = only.filter((n) => !BENCHES.some(([b]) => b === n));
if (unknown.length) throw new Error(`unknown benchmark(s) ${unknown.join(', ')}; known: ${BENCHES.map(([b]) => b).join(', ')}`);
const chosen = BENCHES.filter(([n]) => !only.length || only.includes(n));
const work = mkdtempSync(path.join(tmpdir(), 'rigcam-bench-run-'));
const t0 = performance.now();
const reports: BenchReport[] = [];
process.stderr.write(`rigcam benchmarks, scale ${scale}: ${chosen.map(([n]) => n).join(', ')}\n`);
for (const [name, expected] of chosen) {
  process.stderr.write(`\n== ${name}\n`);
  reports.push(await runOne(name, expected, scale, path.join(work, `${name}.json`)));
}
rmSync(work, { recursive: true, force: true });
const total = (performance.now() - t0) / 1000;
if (process.env.RIGCAM_BENCH_JSON) writeFileSync(process.env.RIGCAM_BENCH_JSON, JSON.stringify({ scale, totalSeconds: total, reports }, null, 2));
process.stdout.write(`\n${renderTable(reports)}\n\ntotal ${Math.floor(total / 60)} min ${Math.round(total % 60)} s\n`);
process.exit(reports.some((r) => r.error) ? 1 : 0);
