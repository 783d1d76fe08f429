import { closeSync, existsSync, fsyncSync, linkSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { z } from 'zod';
import { openStoreReadonly } from '../storage/open-store.ts';
import { readSidecar } from '../storage/sidecar.ts';
import type { Store } from '../storage/store.ts';
import { readCsv } from '../timing/csv-format.ts';
import { AlignError, alignTrains, toReferenceUs, type AlignFit } from './align.ts';

/**
 * `rigcam align`: two or more boxes' sync pulse trains (their databases, or exported edge CSVs) and optionally an
 * acquisition system's pulse log, each fitted onto the reference clock; every frame of the boxes' recordings gets
 * its time on that clock in a NEW CSV beside the recorded one (`<base>.aligned-<reference>.csv`: the recorded CSV's
 * rows unchanged, plus `ref_time_s` and `ref_extrapolated`). All or nothing: a box that cannot be aligned, or an
 * output that exists, stops the command before any file is written.
 */

const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$/, 'names: 1-32 letters, digits, "-" or "_"');

/** One input: `[NAME=]PATH`, PATH a rigcam database (.db) or an edge CSV (.csv). */
const inputSpec = z.string().min(1).transform((s, ctx) => {
  const m = /^([A-Za-z0-9][A-Za-z0-9_-]{0,31})=(.+)$/.exec(s);
  const file = m ? m[2]! : s;
  if (!/\.(db|csv)$/i.test(file)) {
    ctx.addIssue({ code: 'custom', message: `${file}: a rigcam database (.db) or an edge CSV (.csv)` });
    return z.NEVER;
  }
  const base = path.basename(file).replace(/\.(db|csv)$/i, '');
  const guess = base === 'rigcam' ? path.basename(path.dirname(path.resolve(file))) : base;
  return { name: m ? m[1]! : guess.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 32) || 'box', file: path.resolve(file), kind: /\.db$/i.test(file) ? ('db' as const) : ('csv' as const) };
});

export const alignArgsSchema = z
  .strictObject({
    inputs: z.array(inputSpec).min(1, 'at least one box'),
    pulses: z.string().min(1).optional(),
    reference: name.optional(),
    line: z.coerce.number().int().min(0).max(511).optional(),
    direction: z.enum(['in', 'out']).optional(),
    toleranceMs: z.coerce.number().positive().max(100).default(3),
    window: z.coerce.number().int().min(3).max(20).default(5),
    minPulses: z.coerce.number().int().min(3).default(10),
    root: z.array(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,31}=.+$/, 'NAME=DIR')).default([]),
    residuals: z.string().min(1).optional(),
  })
  .superRefine((a, ctx) => {
    const names = a.inputs.map((i) => i.name);
    if (a.pulses) names.push('pulses');
    if (names.length < 2) ctx.addIssue({ code: 'custom', message: 'two or more pulse trains: boxes, or a box and --pulses', path: ['inputs'] });
    if (new Set(names).size !== names.length) ctx.addIssue({ code: 'custom', message: `names must differ (${names.join(', ')}): name inputs NAME=PATH`, path: ['inputs'] });
    if (a.reference && !names.includes(a.reference)) ctx.addIssue({ code: 'custom', message: `no input named ${a.reference} (${names.join(', ')})`, path: ['reference'] });
  });
export type AlignArgs = z.output<typeof alignArgsSchema>;

/** What the command prints (JSON). */
export interface AlignReport {
  reference: string;
  boxes: Array<{
    name: string;
    file: string;
    train: { boot_id: string | null; direction: string | null; line: number | null; pulses: number };
    offset_us: number;
    drift_ppm: number;
    matched: number;
    unmatched_reference: number;
    unmatched_box: number;
    residual_max_us: number;
    residual_rms_us: number;
    recordings: Array<{ recording_id: number; csv: string; aligned_csv: string; frames: number; extrapolated: number }>;
    skipped: Array<{ recording_id: number; reason: string }>;
  }>;
}

interface Train {
  name: string;
  file: string;
  onsets: number[];
  bootId: string | null;
  direction: 'in' | 'out' | null;
  line: number | null;
  store?: Store;
  root?: string;
}

function numberCell(v: string | undefined, where: string): number {
  const n = Number(v);
  if (v === undefined || v.trim() === '' || !Number.isFinite(n)) throw new AlignError(`${where}: "${v ?? ''}" is not a number`);
  return n;
}

/** An acquisition system's pulse log: times in seconds, one a line (a header, and other columns, allowed). */
export function readPulseLog(file: string): number[] {
  const text = readFileSync(file, 'utf8');
  const records = parse(text, { relax_column_count: true, skip_empty_lines: true, bom: true, trim: true }) as string[][];
  if (!records.length) throw new AlignError(`${file}: no pulses`);
  const first = records[0]!;
  let col = 0;
  let rows = records;
  if (!Number.isFinite(Number(first[0])) || first[0] === '') {
    const known = first.findIndex((h) => /^(time|time_s|t|seconds|pulse_time)$/i.test(h));
    col = known >= 0 ? known : 0;
    rows = records.slice(1);
  }
  return rows.map((r, i) => numberCell(r[col], `${file} line ${i + 1 + (rows === records ? 0 : 1)}`) * 1e6);
}

/** An exported edge CSV: `mono_us` (or `time_s`), and `active` when it has both edges (onsets kept). */
export function readEdgeCsv(file: string, f: { direction?: 'in' | 'out'; line?: number }): number[] {
  const { header, rows } = readCsv(readFileSync(file, 'utf8'));
  const col = header.includes('mono_us') ? 'mono_us' : header.includes('time_s') ? 'time_s' : null;
  if (!col) throw new AlignError(`${file}: no mono_us or time_s column (header: ${header.join(',')})`);
  const out: number[] = [];
  rows.forEach((r, i) => {
    if (r.active !== undefined && !/^(1|true)$/i.test(r.active)) return;
    if (f.direction && r.direction !== undefined && r.direction !== f.direction) return;
    if (f.line !== undefined && r.line !== undefined && Number(r.line) !== f.line) return;
    const v = numberCell(r[col], `${file} line ${i + 2}`);
    out.push(col === 'time_s' ? v * 1e6 : v);
  });
  return out;
}

function trainFromDb(name: string, file: string, a: AlignArgs): Train {
  if (!existsSync(file)) throw new AlignError(`${name}: ${file} does not exist`);
  const store = openStoreReadonly(file);
  let trains;
  try {
    trains = store.syncTrains();
  } catch (err) {
    store.close();
    throw new AlignError(`${name}: ${file} has no sync edges table (${(err as Error).message}): made by a rigcam without sync pulses`);
  }
  // The newest boot's train; inputs (kernel stamps) before the box's own train out, unless told.
  const boot = trains.at(-1)?.boot_id;
  let cands = trains.filter((t) => t.boot_id === boot && (a.line === undefined || t.line === a.line));
  const direction = a.direction ?? (cands.some((t) => t.direction === 'in') ? 'in' : 'out');
  cands = cands.filter((t) => t.direction === direction);
  if (!cands.length) {
    store.close();
    throw new AlignError(`${name}: no sync pulses ${direction}${a.line !== undefined ? ` on line ${a.line}` : ''} in ${file}`);
  }
  if (cands.length > 1) {
    store.close();
    throw new AlignError(`${name}: sync pulses on lines ${cands.map((c) => c.line).join(', ')}: choose one with --line`);
  }
  const t = cands[0]!;
  const rootArg = a.root.find((r) => r.startsWith(`${name}=`));
  const root = rootArg ? path.resolve(rootArg.slice(name.length + 1)) : path.join(path.dirname(file), 'recordings');
  return { name, file, onsets: store.syncOnsets(t.boot_id, t.direction, t.line), bootId: t.boot_id, direction: t.direction, line: t.line, store, root };
}

const stripEol = (raw: string): string => raw.replace(/\r?\n?$/, '').replace(/\r$/, '');

interface Planned {
  recordingId: number;
  csv: string;
  out: string;
  text: string;
  frames: number;
  extrapolated: number;
}

/** The aligned CSV of one recorded CSV: its records unchanged, each with its time on the reference clock. */
function alignedCsv(csvText: string, fit: Pick<AlignFit, 'offsetUs' | 'driftPpm' | 'boxSpanUs'> | null, marginUs: number): { text: string; frames: number; extrapolated: number } {
  const records = parse(csvText, { raw: true, relax_column_count: true, skip_empty_lines: true, bom: true, record_delimiter: ['\r\n', '\n'] }) as unknown as Array<{ record: string[]; raw: string }>;
  const header = records.shift();
  if (!header) return { text: '', frames: 0, extrapolated: 0 };
  const at = header.record.indexOf('capture_us');
  if (at < 0) throw new AlignError('timing CSV without a capture_us column');
  const lines = [`${stripEol(header.raw.replace(/^\uFEFF/, ''))},ref_time_s,ref_extrapolated`];
  let extrapolated = 0;
  for (const r of records) {
    if (r.record.length !== header.record.length || !/\n$/.test(r.raw)) break; // a torn last record: not aligned
    const us = Number(r.record[at]);
    if (!Number.isFinite(us)) throw new AlignError(`timing CSV: capture_us "${r.record[at]}" is not a number`);
    const ref = fit ? toReferenceUs(fit, us) : us;
    const outside = fit ? us < fit.boxSpanUs[0] - marginUs || us > fit.boxSpanUs[1] + marginUs : false;
    if (outside) extrapolated++;
    lines.push(`${stripEol(r.raw)},${(ref / 1e6).toFixed(6)},${outside ? 1 : 0}`);
  }
  return { text: lines.join('\n') + '\n', frames: lines.length - 1, extrapolated };
}

/** Written under a temporary name, synced, then linked to a name that must not exist: never overwrites. */
function writeExclusive(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'wx');
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(tmp, file);
  } finally {
    unlinkSync(tmp);
  }
}

function planRecordings(t: Train, fit: Pick<AlignFit, 'offsetUs' | 'driftPpm' | 'boxSpanUs'> | null, refName: string, marginUs: number) {
  const planned: Planned[] = [];
  const skipped: Array<{ recording_id: number; reason: string }> = [];
  if (!t.store || !t.root) return { planned, skipped };
  for (const listed of t.store.listRecordings().reverse()) {
    const rec = t.store.recording(listed.id)!;
    if (rec.deleted_at) continue;
    const video = path.resolve(t.root, rec.path);
    const csv = path.resolve(t.root, rec.csv_path);
    const side = readSidecar(video);
    // CLOCK_MONOTONIC restarts at boot: only recordings made on the boot of the pulses can be converted.
    if (!side) {
      skipped.push({ recording_id: rec.id, reason: `no readable sidecar beside ${video}: its boot is unknown` });
      continue;
    }
    if (side.owner.boot_id !== t.bootId) {
      skipped.push({ recording_id: rec.id, reason: `recorded on another boot (${side.owner.boot_id}) than the pulses (${t.bootId})` });
      continue;
    }
    if (!existsSync(csv)) {
      skipped.push({ recording_id: rec.id, reason: `timing CSV ${csv} missing` });
      continue;
    }
    const out = csv.replace(/\.csv$/i, '') + `.aligned-${refName}.csv`;
    const a = alignedCsv(readFileSync(csv, 'utf8'), fit, marginUs);
    planned.push({ recordingId: rec.id, csv, out, ...a });
  }
  return { planned, skipped };
}

export function runAlign(a: AlignArgs): AlignReport {
  const trains: Train[] = [];
  try {
    for (const i of a.inputs) {
      trains.push(i.kind === 'db' ? trainFromDb(i.name, i.file, a) : { name: i.name, file: i.file, onsets: readEdgeCsv(i.file, a), bootId: null, direction: a.direction ?? null, line: a.line ?? null });
    }
    if (a.pulses) trains.push({ name: 'pulses', file: path.resolve(a.pulses), onsets: readPulseLog(a.pulses), bootId: null, direction: null, line: null });
    const refName = a.reference ?? (a.pulses ? 'pulses' : trains[0]!.name);
    const ref = trains.find((t) => t.name === refName)!;
    const opts = { toleranceUs: a.toleranceMs * 1000, window: a.window, minPulses: a.minPulses };
    const fits = new Map<string, AlignFit | null>();
    for (const t of trains) {
      if (t === ref) fits.set(t.name, null);
      else {
        try {
          fits.set(t.name, alignTrains(ref.onsets, t.onsets, opts));
        } catch (err) {
          if (err instanceof AlignError) throw new AlignError(`${t.name} against ${ref.name}: ${err.message}`);
          throw err;
        }
      }
    }
    // Plan every output first: one that exists refuses the whole run before anything is written.
    const marginFor = (t: Train): number => {
      const iv = t.onsets.slice(1).map((v, k) => v - t.onsets[k]!);
      return iv.length ? Math.max(...iv) : 0;
    };
    const plans = trains.map((t) => ({ t, ...planRecordings(t, fits.get(t.name) ?? null, ref.name, marginFor(t)) }));
    const exists = plans.flatMap((p) => p.planned.filter((x) => existsSync(x.out)).map((x) => x.out));
    if (exists.length) throw new AlignError(`already aligned (never overwritten): ${exists.join(', ')}: move them away to align again`);
    for (const p of plans) for (const x of p.planned) writeExclusive(x.out, x.text);
    if (a.residuals) {
      const rows = ['box,ref_us,box_us,residual_us'];
      for (const [n, f] of fits) if (f) for (const p of f.pairs) rows.push(`${n},${p.refUs},${p.boxUs},${p.residualUs.toFixed(3)}`);
      writeExclusive(path.resolve(a.residuals), rows.join('\n') + '\n');
    }
    return {
      reference: ref.name,
      boxes: plans.map(({ t, planned, skipped }) => {
        const f = fits.get(t.name) ?? null;
        return {
          name: t.name,
          file: t.file,
          train: { boot_id: t.bootId, direction: t.direction, line: t.line, pulses: t.onsets.length },
          offset_us: f ? Math.round(f.offsetUs * 1000) / 1000 : 0,
          drift_ppm: f ? Math.round(f.driftPpm * 1e4) / 1e4 : 0,
          matched: f ? f.pairs.length : t.onsets.length,
          unmatched_reference: f ? f.unmatchedRef : 0,
          unmatched_box: f ? f.unmatchedBox : 0,
          residual_max_us: f ? Math.round(f.residualMaxUs * 1000) / 1000 : 0,
          residual_rms_us: f ? Math.round(f.residualRmsUs * 1000) / 1000 : 0,
          recordings: planned.map((x) => ({ recording_id: x.recordingId, csv: x.csv, aligned_csv: x.out, frames: x.frames, extrapolated: x.extrapolated })),
          skipped,
        };
      }),
    };
  } finally {
    for (const t of trains) t.store?.close();
  }
}
