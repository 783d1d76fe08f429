/**
 * Frame-timing ingest: rows per second into SQLite through rigcam's writer (Store.insertFrames, batches of 30 rows
 * as RecordingFile flushes them every 250 ms at 120 fps) against a raw better-sqlite3 loop inserting the same rows
 * with the same statement, one transaction per batch. Rounds alternate between the two on fresh recordings so
 * that machine noise hits both alike; the median round counts. Then the WAL's checkpoints: the same flushes, paced,
 * with SQLite checkpointing on the event loop (its default) and with WalCheckpointExtension running them from the
 * sqlite3 tool; the longest flush is how long the event loop stood still. Run alone: node --import tsx bench/ingest.ts
 */
import path from 'node:path';
import type { FrameRow } from '../src/timing/frame-row.ts';
import { silentLogger } from '../src/log/logger.ts';
import { WalCheckpointExtension } from '../src/runtime/extensions/wal-checkpoint.ts';
import { openDatabase, type Db } from '../src/storage/database.ts';
import { Store } from '../src/storage/store.ts';
import { ToolShell } from '../src/supervise/tool-shell.ts';
import { runBench, scaled, sleep, type BenchRow } from './lib/harness.ts';
import { count, fixed, median, percentile } from './lib/stats.ts';

const NAME = 'Frame-timing ingest';
const BATCH = 30;
/** The same statement Store prepares, so the comparison isolates the writer's own cost. */
const INSERT_SQL = `INSERT OR REPLACE INTO frames (recording_id, frame_index, capture_us, wall_us, interval_us, missing_before, pts, keyframe, bytes, flags)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;

function newRecording(store: Store, n: number): number {
  return store.createRecording({
    trialId: null, cameraId: 'cam0', segment: n, path: `s/r${n}.ts`, csvPath: `s/r${n}.csv`, codec: 'h264', encoder: 'libx264',
    width: 640, height: 480, fpsNominal: 120, clock: 'monotonic', mono0Us: 0, wall0Us: 0, triggerSource: null, triggerMonoUs: null,
  });
}

function makeRows(recordingId: number, n: number): FrameRow[] {
  const period = 1e6 / 120;
  return Array.from({ length: n }, (_, i) => ({
    recordingId, index: i + 1, captureUs: 5e9 + Math.round(i * period), wallUs: 1.7e15 + Math.round(i * period),
    intervalUs: i ? Math.round(period) : null, missingBefore: 0, pts: (450_000_000 + i * 750) % 2 ** 33,
    keyframe: i % 120 === 0, bytes: 4000 + (i % 7) * 13, flags: i < 120 ? 'preroll' : '',
  }));
}

function batches(rows: FrameRow[]): FrameRow[][] {
  const out: FrameRow[][] = [];
  for (let i = 0; i < rows.length; i += BATCH) out.push(rows.slice(i, i + BATCH));
  return out;
}

/**
 * Seconds for all batches, and each flush's duration (the event loop is blocked that long). With `progress`, each
 * flush also updates the recording's progress row, as RecordingFile does.
 */
function timeRigcam(store: Store, recordingId: number, bs: FrameRow[][], progress: boolean): { s: number; flushMs: number[] } {
  const flushMs: number[] = [];
  const t0 = performance.now();
  let frames = 0;
  for (const b of bs) {
    const f0 = performance.now();
    store.insertFrames(b);
    frames += b.length;
    if (progress) store.updateRecordingProgress(recordingId, { frames, dropped: 0, bytes: frames * 4000 });
    flushMs.push(performance.now() - f0);
  }
  return { s: (performance.now() - t0) / 1000, flushMs };
}

function timeRaw(db: Db, bs: FrameRow[][]): number {
  const ins = db.prepare(INSERT_SQL);
  const begin = db.prepare('BEGIN');
  const commit = db.prepare('COMMIT');
  const t0 = performance.now();
  for (const b of bs) {
    begin.run();
    for (const r of b) ins.run(r.recordingId, r.index, r.captureUs, r.wallUs, r.intervalUs, r.missingBefore, r.pts, r.keyframe ? 1 : 0, r.bytes, r.flags);
    commit.run();
  }
  return (performance.now() - t0) / 1000;
}

/**
 * Flushes paced one per 2 ms for `ms` (about 60x two 120 fps cameras, so the WAL passes SQLite's 1000-page checkpoint
 * threshold about once a second) on a fresh database, with checkpoints on the event loop (SQLite's) or from the
 * sqlite3 tool (`offLoop`, the WAL's size looked at every 100 ms: the 2 s it uses at real rates, sped up as much);
 * each flush's duration.
 */
async function pacedFlushes(file: string, ms: number, offLoop: boolean): Promise<{ flushMs: number[]; checkpoints: number }> {
  const store = new Store(openDatabase(file));
  const shell = new ToolShell({ timeoutMs: 2000 });
  shell.start();
  const ext = new WalCheckpointExtension({ store, run: (c, a, t) => shell.run(c, a, t), log: silentLogger(), pollMs: 100 });
  let checkpoints = 0;
  try {
    if (offLoop) {
      await ext.start();
    }
    const id = newRecording(store, 0);
    const bs = batches(makeRows(id, Math.ceil(ms / 2) * BATCH)); // at most one flush per 2 ms
    const flushMs: number[] = [];
    const end = performance.now() + ms;
    let last: unknown = null;
    for (let i = 0; performance.now() < end && i < bs.length; i++) {
      const f0 = performance.now();
      store.insertFrames(bs[i]!);
      flushMs.push(performance.now() - f0);
      if (ext.last !== last) {
        last = ext.last;
        checkpoints++;
      }
      await sleep(2);
    }
    if (offLoop && checkpoints === 0) throw new Error('sqlite3 never checkpointed: is it installed?');
    return { flushMs, checkpoints };
  } finally {
    await ext.stop();
    shell.close();
    store.close();
  }
}

await runBench('ingest', async (ctx) => {
  const dir = ctx.tmpDir('ingest');
  const rounds = 7;
  const perRound = scaled(30_000, ctx.scale, 3000);
  const rigDb = openDatabase(path.join(dir, 'rigcam.db'));
  const rawDb = openDatabase(path.join(dir, 'raw.db'));
  const rig = new Store(rigDb);
  const raw = new Store(rawDb);
  const rigRates: number[] = [];
  const fullRates: number[] = [];
  const rawRates: number[] = [];
  const flushMs: number[] = [];
  let recordings = 0;
  let rowsMissing = 0;
  const variants: Record<string, () => void> = {
    rigcam: () => {
      const id = newRecording(rig, recordings++);
      rigRates.push(perRound / timeRigcam(rig, id, batches(makeRows(id, perRound)), false).s);
      rowsMissing += perRound - rig.frameCount(id);
    },
    full: () => {
      const id = newRecording(rig, recordings++);
      const r = timeRigcam(rig, id, batches(makeRows(id, perRound)), true);
      fullRates.push(perRound / r.s);
      flushMs.push(...r.flushMs);
      rowsMissing += perRound - rig.frameCount(id);
    },
    raw: () => {
      const id = newRecording(raw, recordings++);
      rawRates.push(perRound / timeRaw(rawDb, batches(makeRows(id, perRound))));
    },
  };
  ctx.log(`${rounds} rounds of ${count(perRound)} rows per variant, batches of ${BATCH}`);
  const order = Object.keys(variants);
  // Rotate which goes first, so drift in the machine's load hits every variant alike.
  for (let k = 0; k < rounds; k++) for (let j = 0; j < order.length; j++) variants[order[(k + j) % order.length]!]!();
  rigDb.close();
  rawDb.close();

  // The WAL's checkpoints: on the event loop, then off it, twice (ABAB), each on a fresh database.
  const paceMs = scaled(8000, ctx.scale, 3000);
  const ckpt = { on: [] as number[], off: [] as number[], offCount: 0 };
  for (let k = 0; k < 4; k++) {
    const off = k % 2 === 1;
    const r = await pacedFlushes(path.join(dir, `ckpt${k}.db`), paceMs, off);
    (off ? ckpt.off : ckpt.on).push(...r.flushMs);
    if (off) ckpt.offCount += r.checkpoints;
  }
  const over = (a: number[], ms: number): number => a.filter((x) => x > ms).length;
  const rigRate = median(rigRates);
  const fullRate = median(fullRates);
  const rawRate = median(rawRates);
  const need = 2 * 120;
  const rows: BenchRow[] = [
    { bench: NAME, figure: 'rows/s, Store.insertFrames (30-row batches)', value: count(rigRate), baseline: `${count(rawRate)} raw loop`, ratio: fixed(rigRate / rawRate, 3), goal: '—', ok: rowsMissing === 0 ? null : false },
    { bench: NAME, figure: 'rows/s, with the progress update per flush', value: count(fullRate), baseline: `${count(rawRate)} raw loop`, ratio: fixed(fullRate / rawRate, 3), goal: '—', ok: null },
    { bench: NAME, figure: 'one flush (30 rows + progress), p50 / p99', value: `${fixed(percentile(flushMs, 50), 3)} / ${fixed(percentile(flushMs, 99), 3)} ms`, baseline: '250 ms flush interval', ratio: fixed(percentile(flushMs, 99) / 250, 4), goal: '—', ok: null },
  ];
  const onMax = Math.max(...ckpt.on);
  const offMax = Math.max(...ckpt.off);
  rows.push({
    bench: NAME,
    figure: 'longest flush with the WAL past 1000 pages ~1/s: checkpoints from sqlite3 / on the event loop',
    value: `${fixed(offMax, 2)} ms (p99.9 ${fixed(percentile(ckpt.off, 99.9), 2)})`,
    baseline: `${fixed(onMax, 2)} ms (p99.9 ${fixed(percentile(ckpt.on, 99.9), 2)}) SQLite's own`,
    ratio: fixed(offMax / onMax, 2),
    goal: '—',
    ok: null,
  });
  const notes = [
    `WAL checkpoints: ${count(ckpt.on.length)} and ${count(ckpt.off.length)} flushes paced 1 per 2 ms (${paceMs / 1000} s x 2 each, alternating); over 2 ms: ${over(ckpt.on, 2)} on the loop, ${over(ckpt.off, 2)} off it (${ckpt.offCount} checkpoints by sqlite3); over 5 ms: ${over(ckpt.on, 5)} and ${over(ckpt.off, 5)}.`,
    `headroom: ${fixed(fullRate / need, 0)}x the ${need} rows/s of two 120 fps cameras. Rounds (rows/s): insertFrames ${rigRates.map(count).join(' ')}; raw ${rawRates.map(count).join(' ')}.`,
    "WAL with synchronous=NORMAL (rigcam's settings, both databases): a commit does not fsync, so this is the CPU cost of the writer, not the card's.",
  ];
  if (rowsMissing) notes.push(`${rowsMissing} rows written through Store.insertFrames are missing from the table`);
  return { rows, notes };
});
