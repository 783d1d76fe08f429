// `rigcam align` (issue 18, "Done when"): two boxes' databases on one machine, each fed the same pulse train through
// its GPIO stand-in (gpiomon replaying the train; the real controller and SyncRecorder storing it), box B's clock
// 12.345 s ahead and 50 ppm fast, frames written through the Store on each box's own clock; the real CLI recovers
// offset and drift and puts every frame of B on A's clock.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { openDatabase } from '../../src/storage/database.ts';
import { bootId, createSidecar, sidecarPathFor } from '../../src/storage/sidecar.ts';
import { Store } from '../../src/storage/store.ts';
import { AlignError, alignTrains, toReferenceUs } from '../../src/sync/align.ts';
import { readCsv } from '../../src/timing/csv-format.ts';
import { trainIntervals } from '../../src/triggers/gpio/index.ts';
import { runCli } from '../helpers/cli.ts';
import { makeSyntheticRecording } from '../helpers/synthetic-recording.ts';
import { syncLines, until, writePulseFixture } from '../helpers/sync-train.ts';
import { tmpDir } from '../helpers/tmp.ts';

const OFFSET_US = 12_345_000;
const DRIFT = 50e-6;
/** Box B's clock for an instant on box A's clock (µs, fractional). */
const toB = (aUs: number): number => aUs * (1 + DRIFT) + OFFSET_US;

/** An Rsync-style train on A's clock (ns): seeded intervals of 100-1000 ms, onsets with a few ns of noise. */
function trainNs(n: number, startUs: number, seed: number): bigint[] {
  const next = trainIntervals({ pattern: 'random', min_interval_ms: 100, max_interval_ms: 1000, period_ms: 1000 }, seed);
  const out: bigint[] = [];
  let t = startUs * 1000;
  for (let i = 0; i < n; i++) {
    t += next() * 1e6;
    out.push(BigInt(Math.round(t + ((i * 7919) % 997))));
  }
  return out;
}

const onB = (ns: readonly bigint[]): bigint[] => ns.map((t) => BigInt(Math.round(toB(Number(t) / 1000) * 1000)));

/** A box: its data dir, store, recordings root. */
function box(name: string) {
  const dir = tmpDir(`rigcam-align-${name}-`);
  const store = new Store(openDatabase(path.join(dir, 'rigcam.db')));
  return { dir, store, root: path.join(dir, 'recordings') };
}

/** Feed a train (a gpiomon v2 recording) through the box's GPIO stand-in into its store; resolves once all stored. */
async function feed(b: ReturnType<typeof box>, onsetsNs: readonly bigint[]): Promise<void> {
  const fixture = path.join(b.dir, 'train.txt');
  writePulseFixture(fixture, 5, onsetsNs);
  const lines = syncLines(b.store, b.dir, { inputs: [{ line: 5, mode: 'sync' }] }, { GPIOD_STANDIN_VERSION: '2', GPIOMON_FIXTURE: fixture, GPIOMON_SPEED: '200' });
  await lines.start();
  try {
    await until(`${onsetsNs.length} pulses`, () => lines.edges('in').length >= 2 * onsetsNs.length, 60_000);
  } finally {
    await lines.stop();
  }
}

/** A recording through the store (rows, CSV) with the JSON sidecar a recorder writes, on this boot or another. */
function recording(b: ReturnType<typeof box>, session: string, capturesUs: readonly number[], boot = bootId()) {
  const fps = 30;
  const syn = makeSyntheticRecording(b.store, b.root, { session, fps, frames: capturesUs.length, startUs: capturesUs[0]! });
  // makeSyntheticRecording spaces frames evenly from startUs: replace them by the box's own capture times.
  const rec = b.store.recording(syn.recordingId)!;
  const csv = path.join(b.root, rec.csv_path);
  const { header, rows } = readCsv(readFileSync(csv, 'utf8'));
  const lines = rows.map((r, k) => header.map((h) => (h === 'capture_us' ? String(capturesUs[k]) : h === 'record_time_mono' ? (capturesUs[k]! / 1e6).toFixed(9) : r[h]!)).join(','));
  writeFileSync(csv, [header.join(','), ...lines].join('\n') + '\n');
  createSidecar(sidecarPathFor(path.join(b.root, rec.path)), {
    format: 'rigcam-recording/1',
    recording: { camera_id: 'cam0', segment: 0, codec: 'h264', encoder: 'libx264', width: 320, height: 240, fps_nominal: fps, clock: 'monotonic', mono0_us: capturesUs[0]!, wall0_us: 1_700_000_000_000_000, trigger_source: 'http', trigger_mono_us: capturesUs[0]!, started_at: new Date().toISOString() },
    camera: { backend: 'test' },
    session: { name: session, metadata: {} },
    trial: { number: 1, label: 'synthetic', metadata: {}, trigger_source: 'http', trigger_mono_us: capturesUs[0]! },
    owner: { pid: process.pid, boot_id: boot },
    state: 'complete',
    frames: capturesUs.length,
    dropped: 0,
    stop_reason: null,
    stopped_at: new Date().toISOString(),
  });
  return { id: syn.recordingId, csv, text: readFileSync(csv, 'utf8') };
}

describe('rigcam align', () => {
  it('two boxes fed the same train, B 12.345 s ahead and 50 ppm fast: offset and drift within 100 µs, every frame of B on A\'s clock', async (t) => {
    const a = box('a');
    const b = box('b');
    const startUs = 3_600_000_000; // an hour after boot
    const train = trainNs(300, startUs, 7);
    await Promise.all([feed(a, train), feed(b, onB(train))]);

    // Frames: A's camera and B's camera each at 30 fps, B's first frame 0.4 s after A's, each on its own clock.
    const periodUs = 1e6 / 30;
    const aCaps = Array.from({ length: 900 }, (_, k) => Math.round(startUs + 20e6 + k * periodUs));
    const trueB = Array.from({ length: 900 }, (_, k) => startUs + 20.4e6 + k * periodUs + ((k * 31) % 200)); // instants on A's clock
    const bCaps = trueB.map((t) => Math.round(toB(t)));
    const recA = recording(a, 'ses', aCaps);
    const recB = recording(b, 'ses', bCaps);
    // A recording of an earlier boot: its monotonic times mean nothing against these pulses.
    const old = recording(b, 'old', bCaps.slice(0, 30), '00000000-0000-0000-0000-000000000000');
    // B's edges exported as a CSV (both edges, as the API lists them), for an input without a database.
    const edgeCsv = path.join(b.dir, 'b-edges.csv');
    writeFileSync(edgeCsv, 'id,direction,line,active,mono_us\n' + b.store.syncEdgesPage(0, 10_000).map((e) => `${e.id},${e.direction},${e.line},${e.active ? 'true' : 'false'},${e.mono_us}`).join('\n') + '\n');
    a.store.close();
    b.store.close();

    const r = await runCli(['align', `A=${path.join(a.dir, 'rigcam.db')}`, `B=${path.join(b.dir, 'rigcam.db')}`, '--residuals', path.join(a.dir, 'residuals.csv')]);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as {
      reference: string;
      boxes: Array<{ name: string; offset_us: number; drift_ppm: number; matched: number; unmatched_box: number; residual_max_us: number; residual_rms_us: number; recordings: Array<{ recording_id: number; aligned_csv: string; frames: number; extrapolated: number }>; skipped: Array<{ recording_id: number; reason: string }> }>;
    };
    assert.equal(report.reference, 'A');
    const fb = report.boxes.find((x) => x.name === 'B')!;
    assert.equal(fb.matched, 300);
    assert.ok(Math.abs(fb.offset_us - OFFSET_US) < 100, `offset ${fb.offset_us} µs`);
    // A drift error shows as a time error growing with the clock: within 100 µs at the last pulse.
    const lastUs = Number(train.at(-1)!) / 1000;
    assert.ok(Math.abs(fb.drift_ppm - DRIFT * 1e6) * 1e-6 * lastUs < 100, `drift ${fb.drift_ppm} ppm`);
    assert.ok(fb.residual_max_us < 5 && fb.residual_rms_us < 3, `residuals max ${fb.residual_max_us}, rms ${fb.residual_rms_us} µs`);
    assert.deepEqual(fb.skipped.map((s) => s.recording_id), [old.id]);
    assert.match(fb.skipped[0]!.reason, /another boot/);

    // Every frame of B, on A's clock, against the instant it was really captured.
    const outB = fb.recordings.find((x) => x.recording_id === recB.id)!;
    assert.equal(outB.frames, 900);
    assert.equal(outB.extrapolated, 0);
    const aligned = readCsv(readFileSync(outB.aligned_csv, 'utf8'));
    assert.equal(aligned.rows.length, 900);
    let worst = 0;
    aligned.rows.forEach((row, k) => {
      const err = Math.abs(Number(row.ref_time_s) * 1e6 - trueB[k]!);
      worst = Math.max(worst, err);
      assert.ok(err < periodUs, `frame ${k + 1}: ${err} µs off`);
    });
    assert.ok(worst < 100, `worst frame ${worst} µs off`);
    t.diagnostic(`offset error ${(fb.offset_us - OFFSET_US).toFixed(3)} µs, drift error ${(fb.drift_ppm - DRIFT * 1e6).toFixed(5)} ppm, residual max ${fb.residual_max_us} µs rms ${fb.residual_rms_us} µs, worst frame ${worst.toFixed(2)} µs`);
    // The recorded CSV is untouched; the aligned one is beside it, its rows the recorded ones plus two columns.
    assert.equal(readFileSync(recB.csv, 'utf8'), recB.text);
    assert.equal(path.dirname(outB.aligned_csv), path.dirname(recB.csv));
    assert.match(path.basename(outB.aligned_csv), /\.aligned-A\.csv$/);
    const recorded = readCsv(recB.text);
    assert.deepEqual(aligned.header, [...recorded.header, 'ref_time_s', 'ref_extrapolated']);
    aligned.rows.forEach((row, k) => assert.deepEqual({ ...row, ref_time_s: undefined, ref_extrapolated: undefined }, { ...recorded.rows[k], ref_time_s: undefined, ref_extrapolated: undefined }));
    // The reference's own frames keep their times.
    const outA = report.boxes.find((x) => x.name === 'A')!.recordings.find((x) => x.recording_id === recA.id)!;
    readCsv(readFileSync(outA.aligned_csv, 'utf8')).rows.forEach((row, k) => assert.equal(Math.round(Number(row.ref_time_s) * 1e6), aCaps[k]));
    assert.equal(readCsv(readFileSync(path.join(a.dir, 'residuals.csv'), 'utf8')).rows.length, 300);

    // Run again: nothing is overwritten, nothing written.
    const before = readdirSync(path.dirname(recB.csv)).sort();
    const again = await runCli(['align', `A=${path.join(a.dir, 'rigcam.db')}`, `B=${path.join(b.dir, 'rigcam.db')}`]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already aligned \(never overwritten\)/);
    assert.deepEqual(readdirSync(path.dirname(recB.csv)).sort(), before);

    // An acquisition system's pulse log (seconds on its own clock, 2.5 s behind A, a header) as the reference.
    const log = path.join(a.dir, 'daq-pulses.csv');
    writeFileSync(log, 'time\n' + train.map((t) => ((Number(t) / 1000 - 2_500_000) / 1e6).toFixed(6)).join('\n') + '\n');
    const daq = await runCli(['align', `A=${path.join(a.dir, 'rigcam.db')}`, `B=${path.join(b.dir, 'rigcam.db')}`, '--pulses', log]);
    assert.equal(daq.code, 0, daq.stderr);
    const dr = JSON.parse(daq.stdout) as typeof report;
    assert.equal(dr.reference, 'pulses');
    const da = dr.boxes.find((x) => x.name === 'A')!;
    const db = dr.boxes.find((x) => x.name === 'B')!;
    assert.ok(Math.abs(da.offset_us - 2_500_000) < 100, `A on the DAQ clock: ${da.offset_us}`);
    assert.ok(Math.abs(da.drift_ppm) < 0.05, `A drift ${da.drift_ppm}`);
    assert.ok(Math.abs(toReferenceUs({ offsetUs: db.offset_us, driftPpm: db.drift_ppm }, toB(startUs)) - (startUs - 2_500_000)) < 100);
    assert.ok(existsSync(recB.csv.replace(/\.csv$/, '.aligned-pulses.csv')));

    // B as an exported edge CSV, and the reference: A's frames go onto B's clock (the inverse fit).
    const viaCsv = await runCli(['align', `A=${path.join(a.dir, 'rigcam.db')}`, `Bx=${edgeCsv}`, '--reference', 'Bx']);
    assert.equal(viaCsv.code, 0, viaCsv.stderr);
    const vr = JSON.parse(viaCsv.stdout) as typeof report;
    assert.equal(vr.boxes.find((x) => x.name === 'Bx')!.matched, 300);
    const onBx = vr.boxes.find((x) => x.name === 'A')!.recordings.find((x) => x.recording_id === recA.id)!;
    readCsv(readFileSync(onBx.aligned_csv, 'utf8')).rows.forEach((row, k) => {
      const err = Math.abs(Number(row.ref_time_s) * 1e6 - toB(aCaps[k]!));
      assert.ok(err < 100, `A frame ${k + 1} on B's clock: ${err} µs off`);
    });
  });

  it('refuses an ambiguous fixed-rate train and writes nothing', async () => {
    const a = box('fa');
    const b = box('fb');
    const fixed = Array.from({ length: 60 }, (_, i) => BigInt(1_000_000_000_000 + i * 500_000_000));
    await Promise.all([feed(a, fixed), feed(b, onB(fixed))]);
    const rec = recording(b, 'ses', [toB(1_001_000_000), toB(1_001_033_333)].map(Math.round));
    a.store.close();
    b.store.close();
    const r = await runCli(['align', path.join(a.dir, 'rigcam.db'), `B=${path.join(b.dir, 'rigcam.db')}`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /align refused: B against .*: ambiguous match: .*fixed-rate train has no distinguishing intervals/);
    assert.deepEqual(readdirSync(path.dirname(rec.csv)).filter((f) => f.includes('aligned')), []);
  });

  it('bad command lines are refused by their field', async () => {
    const r1 = await runCli(['align', '/tmp/only-one.db']);
    assert.equal(r1.code, 2);
    assert.match(r1.stderr, /two or more pulse trains/);
    const r2 = await runCli(['align', '/tmp/a.db', '/tmp/b.txt']);
    assert.equal(r2.code, 2);
    assert.match(r2.stderr, /a rigcam database \(\.db\) or an edge CSV/);
    const r3 = await runCli(['align', 'X=/tmp/a.db', 'X=/tmp/b.db']);
    assert.match(r3.stderr, /names must differ/);
    const r4 = await runCli(['align', '/tmp/a.db', '/tmp/b.db', '--window', '2']);
    assert.match(r4.stderr, /window/);
    const r5 = await runCli(['align', '/tmp/nope-a.db', '/tmp/nope-b.db']);
    assert.equal(r5.code, 1);
    assert.match(r5.stderr, /does not exist/);
  });
});

describe('alignTrains', () => {
  const ref = trainNs(200, 1_000_000_000, 3).map((t) => Number(t) / 1000);
  const boxTrain = ref.map(toB);

  it('one missing and one extra pulse: still aligned, both counted', () => {
    const missing = boxTrain.filter((_, i) => i !== 80);
    const extra = [...missing, (boxTrain[120]! + boxTrain[121]!) / 2].sort((x, y) => x - y);
    const fit = alignTrains(ref, extra);
    assert.equal(fit.pairs.length, 199);
    assert.equal(fit.unmatchedRef, 1);
    assert.equal(fit.unmatchedBox, 1);
    assert.ok(Math.abs(fit.offsetUs - OFFSET_US) < 100, String(fit.offsetUs));
    assert.ok(Math.abs(fit.driftPpm - 50) < 0.01, String(fit.driftPpm));
    for (const p of fit.pairs) assert.ok(Math.abs(p.residualUs) < 2, `residual ${p.residualUs}`);
  });

  it('a few missing at the start, a train of the box that began later: the overlap aligns', () => {
    const fit = alignTrains(ref, boxTrain.slice(40));
    assert.equal(fit.pairs.length, 160);
    assert.ok(Math.abs(fit.offsetUs - OFFSET_US) < 100);
  });

  it('refuses: a fixed-rate train, too few pulses, trains that do not match', () => {
    const fixed = Array.from({ length: 100 }, (_, i) => 1e9 + i * 250_000);
    assert.throws(() => alignTrains(fixed, fixed.map(toB)), (e: Error) => e instanceof AlignError && /ambiguous match/.test(e.message));
    assert.throws(() => alignTrains(ref.slice(0, 8), boxTrain.slice(0, 8)), /too few pulses to align: 8 on the reference, 8 on the box/);
    const other = trainNs(200, 1_000_000_000, 99).map((t) => Number(t) / 1000);
    assert.throws(() => alignTrains(ref, other), /no run of 5 consecutive intervals agrees|too few pulses matched/);
  });

  it('a box exactly on the reference clock: offset 0, drift 0', () => {
    const fit = alignTrains(ref, ref);
    assert.ok(Math.abs(fit.offsetUs) < 1e-3 && Math.abs(fit.driftPpm) < 1e-6);
    assert.equal(toReferenceUs(fit, ref[10]!), ref[10]);
  });
});
