/**
 * Reconcile: how long start-up takes to reconcile one hour of 30 fps recording left in state 'recording'. The hour
 * is made with ffmpeg at 160x120 (cached between runs under the temp dir); scaled runs use a shorter file and
 * extrapolate linearly to the hour, and say so. Baseline: reading the same file's bytes without demuxing.
 * Run alone: node --import tsx bench/reconcile.ts
 */
import { spawn } from 'node:child_process';
import { createReadStream, existsSync, linkSync, copyFileSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { silentLogger } from '../src/log/logger.ts';
import { TsDemuxer } from '../src/pipeline/ts-demux.ts';
import { openDatabase } from '../src/storage/database.ts';
import { readTsFrames, reconcileRecording } from '../src/storage/reconcile.ts';
import { Store } from '../src/storage/store.ts';
import { runBench, type BenchCtx, type BenchRow } from './lib/harness.ts';
import { count, fixed, mib } from './lib/stats.ts';

const NAME = 'Reconcile (1 h, 30 fps)';
const HOUR = 3600;
/** Generation must stay under this; a slower machine makes a shorter file and extrapolates. */
const GEN_BUDGET_S = 120;

interface Made {
  file: string;
  seconds: number;
  genSeconds: number;
  cached: boolean;
}

function ffmpeg(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`ffmpeg exit ${code}: ${err.trim()}`))));
  });
}

const genArgs = (seconds: number, out: string): string[] => [
  '-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=30', '-t', String(seconds),
  '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '30', '-bf', '0', '-f', 'mpegts', '-y', out,
];

/** A TS of `seconds` at 30 fps, from the cache when an earlier run made it. */
async function makeTs(ctx: BenchCtx, want: number): Promise<Made> {
  const cache = path.join(tmpdir(), 'rigcam-bench-cache');
  mkdirSync(cache, { recursive: true });
  // A short probe tells whether the whole length fits the generation budget on this machine.
  const probe = path.join(cache, 'probe.ts');
  const p0 = performance.now();
  await ffmpeg(genArgs(60, probe));
  const perSecond = (performance.now() - p0) / 1000 / 60;
  rmSync(probe, { force: true });
  const seconds = Math.min(want, Math.floor(GEN_BUDGET_S / perSecond / 60) * 60 || 60);
  const file = path.join(cache, `testsrc2-160x120-30fps-${seconds}s.ts`);
  const meta = `${file}.json`;
  if (existsSync(file) && existsSync(meta)) {
    const m = JSON.parse(readFileSync(meta, 'utf8')) as { genSeconds: number };
    return { file, seconds, genSeconds: m.genSeconds, cached: true };
  }
  ctx.log(`making ${seconds} s of 30 fps TS (${fixed(perSecond * seconds, 0)} s projected)`);
  const t0 = performance.now();
  await ffmpeg(genArgs(seconds, `${file}.part`));
  const genSeconds = (performance.now() - t0) / 1000;
  renameSync(`${file}.part`, file);
  writeFileSync(meta, JSON.stringify({ genSeconds }));
  return { file, seconds, genSeconds, cached: false };
}

/** Bytes of a file read as reconcile reads it (1 MiB chunks), doing nothing with them. */
function readOnly(file: string): Promise<number> {
  return new Promise((resolve, reject) => {
    let n = 0;
    createReadStream(file, { highWaterMark: 1 << 20 })
      .on('data', (c) => (n += (c as Buffer).length))
      .on('end', () => resolve(n))
      .on('error', reject);
  });
}

/** PTS of the first `n` frames, read from the head of the file only. */
function firstPts(file: string, n: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const pts: number[] = [];
    const demux = new TsDemuxer({ onAccessUnit: (au) => pts.push(au.ptsRaw) });
    createReadStream(file, { start: 0, end: 4 << 20 })
      .on('data', (c) => demux.push(c as Buffer))
      .on('end', () => resolve(pts.slice(0, n)))
      .on('error', reject);
  });
}

await runBench('reconcile', async (ctx) => {
  const want = Math.max(60, Math.round(HOUR * ctx.scale));
  const made = await makeTs(ctx, want);
  const size = statSync(made.file).size;
  const dir = ctx.tmpDir('reconcile');
  const root = path.join(dir, 'recordings');
  mkdirSync(path.join(root, 's1'), { recursive: true });
  const rel = path.join('s1', 's1_trial001_cam0.ts');
  try {
    linkSync(made.file, path.join(root, rel));
  } catch {
    copyFileSync(made.file, path.join(root, rel));
  }

  const db = openDatabase(path.join(dir, 'rigcam.db'));
  const store = new Store(db);
  store.upsertCamera({ id: 'cam0', backend: 'test' });
  const session = store.openSession('s1');
  const trial = store.createTrial({ sessionId: session.id, number: 1, label: '', triggerSource: 'cli', triggerMonoUs: null });
  const id = store.createRecording({
    trialId: trial.id, cameraId: 'cam0', segment: 0, path: rel, csvPath: rel.replace(/\.ts$/, '.csv'), codec: 'h264', encoder: 'libx264',
    width: 160, height: 120, fpsNominal: 30, clock: 'monotonic', mono0Us: 1_000_000, wall0Us: Date.now() * 1000, triggerSource: 'cli', triggerMonoUs: null,
  });
  // A few rows were logged before the "crash": they agree with the file and are kept.
  const head = await firstPts(made.file, 30);
  store.insertFrames(head.map((pts, i) => ({
    recordingId: id, index: i + 1, captureUs: 1_000_000 + Math.round((i * 1e6) / 30), wallUs: 0, intervalUs: i ? 33_333 : null,
    missingBefore: 0, pts, keyframe: i === 0, bytes: 0, flags: '',
  })));

  // The plain read goes first: it puts the file in the page cache for every timing alike.
  let t0 = performance.now();
  await readOnly(made.file);
  const readS = (performance.now() - t0) / 1000;

  global.gc?.();
  const rss0 = process.memoryUsage().rss;
  let rssMax = rss0;
  const sampler = setInterval(() => (rssMax = Math.max(rssMax, process.memoryUsage().rss)), 20);
  t0 = performance.now();
  const report = await reconcileRecording(store, root, store.recording(id)!, silentLogger());
  const reconcileS = (performance.now() - t0) / 1000;
  clearInterval(sampler);
  rssMax = Math.max(rssMax, process.memoryUsage().rss);

  // The demuxing part alone, after the reconcile so its allocations do not hide the reconcile's peak memory.
  t0 = performance.now();
  const frames = (await readTsFrames(made.file)).length;
  const demuxS = (performance.now() - t0) / 1000;
  const after = store.recording(id)!;
  const rowsNow = store.frameCount(id);
  db.close();

  const k = HOUR / made.seconds;
  const ok = after.state === 'interrupted' && after.frame_count === frames && rowsNow === frames && report.rowsRebuilt === frames - head.length;
  const extrapolated = made.seconds !== HOUR;
  const rows: BenchRow[] = [
    { bench: NAME, figure: `reconcileRecording time${extrapolated ? ` (x${fixed(k, 1)} from ${made.seconds} s)` : ''}`, value: `${fixed(reconcileS * k, 1)} s`, baseline: `${fixed(readS * k, 2)} s plain read`, ratio: fixed(reconcileS / readS, 1), goal: '—', ok: ok ? null : false },
    { bench: NAME, figure: 'readTsFrames alone (the demux part)', value: `${fixed(demuxS * k, 1)} s`, baseline: `${fixed(readS * k, 2)} s plain read`, ratio: fixed(demuxS / readS, 1), goal: '—', ok: null },
    { bench: NAME, figure: 'peak RSS growth during reconcile', value: mib((rssMax - rss0) * (extrapolated ? k : 1)), baseline: `${mib(rss0)} before`, ratio: fixed(rssMax / rss0, 2), goal: '—', ok: null },
  ];
  const notes = [
    `${count(frames)} frames, ${mib(size)} file (${made.seconds} s at 160x120); rows rebuilt ${count(report.rowsRebuilt)}, kept ${report.rowsBefore - report.rowsRemoved}, state ${after.state}, frame_count ${count(after.frame_count)}.`,
    `file generated in ${fixed(made.genSeconds, 1)} s${made.cached ? ' (by an earlier run; cached under the temp dir)' : ''}; the file was in the page cache for every timing.`,
    ...(extrapolated ? [`times and memory are extrapolated linearly from ${made.seconds} s to one hour (scale ${ctx.scale}, or generation over ${GEN_BUDGET_S} s).`] : []),
  ];
  if (!ok) notes.push(`reconcile result is wrong: state ${after.state}, frame_count ${after.frame_count}, rows ${rowsNow}, file frames ${frames}`);
  return { rows, notes };
});
