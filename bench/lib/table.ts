import type { BenchReport } from './harness.ts';

const HEAD = ['Benchmark', 'Figure', 'rigcam', 'Baseline (same run)', 'Ratio', 'Goal', 'Met'];

/** The one table: a row per figure, then each benchmark's notes and any failure. */
export function renderTable(reports: BenchReport[]): string {
  const lines: string[][] = [];
  for (const r of reports) {
    if (r.error) lines.push([r.name, 'FAILED', r.error.slice(0, 80), '', '', '', 'no']);
    for (const row of r.rows) lines.push([row.bench, row.figure, row.value, row.baseline, row.ratio, row.goal, row.ok === null ? '' : row.ok ? 'yes' : 'NO']);
  }
  const widths = HEAD.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const fmt = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  const out = [fmt(HEAD), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...lines.map(fmt)];
  const notes = reports.flatMap((r) => r.notes.map((n) => `- ${r.name}: ${n}`));
  const times = reports.map((r) => `${r.name} ${r.seconds.toFixed(0)} s`).join(', ');
  const scale = reports[0]?.scale ?? 1;
  return [...out, '', `scale ${scale}; time: ${times}`, ...(notes.length ? ['', 'Notes:', ...notes] : [])].join('\n');
}
