/**
 * Quality series (issue 19): how long the box takes to answer the decimated timeline of one hour at 120 fps
 * (432,000 frames, a drop every ~4,300 frames) at 1200 buckets, over HTTP on loopback, against a plain
 * `SELECT count(*)` over the same rows in the same run; and that every drop is kept. Also the summary.
 * Run alone: node --import tsx bench/quality-series.ts
 */
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:http';
import path from 'node:path';
import express from 'express';
import { mkdirSync } from 'node:fs';
import { qualityRoutes } from '../src/api/routes-quality.ts';
import type { ApiContext } from '../src/api/context.ts';
import { errorHandler } from '../src/api/http-error.ts';
import { parseConfig } from '../src/config/load.ts';
import { silentLogger } from '../src/log/logger.ts';
import { openDatabase } from '../src/storage/database.ts';
import { Store } from '../src/storage/store.ts';
import { makeSyntheticRecording } from '../test/helpers/synthetic-recording.ts';
import { runBench, type BenchRow } from './lib/harness.ts';
import { count, fixed, median } from './lib/stats.ts';

const NAME = 'Quality series (1 h, 120 fps)';
const RUNS = 7;

await runBench('quality-series', async (ctx) => {
  // Always the full hour: the figure is about 432k rows, and making them takes seconds, not minutes.
  const frames = 432_000;
  const dir = ctx.tmpDir('quality');
  const root = path.join(dir, 'recordings');
  mkdirSync(root, { recursive: true });
  const db = openDatabase(path.join(dir, 'rigcam.db'));
  const store = new Store(db);
  const drops = new Map<number, number>([[2, 1], [frames, 2]]);
  for (let i = 4321; i < frames; i += 4321) drops.set(i, 1 + (i % 3));
  ctx.log(`making ${count(frames)} frame rows`);
  const syn = makeSyntheticRecording(store, root, { session: 'bench', fps: 120, frames, prerollFrames: 120, drops, csv: false, jitterUs: 300, markers: [{ label: 'a', atFrame: 1000 }, { label: 'b', atFrame: 300_000 }] });
  db.pragma('wal_checkpoint(TRUNCATE)');

  // Only the quality routes, as the box mounts them (the rest of the API needs cameras; these need the store).
  const config = parseConfig({ data_dir: dir, http: { host: '127.0.0.1', port: 0, token: null } });
  const c = { config, store, root, log: silentLogger() } as unknown as ApiContext;
  const app = express();
  app.use('/api', qualityRoutes(c));
  app.use(errorHandler(() => undefined));
  const server = createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const countStmt = db.prepare('SELECT count(*) AS n FROM frames WHERE recording_id = ?');
  const timeIt = async (fn: () => Promise<unknown> | unknown): Promise<number> => {
    const t0 = performance.now();
    await fn();
    return performance.now() - t0;
  };
  let series: { buckets: { missing: number[]; t: number[] }; drops: unknown[] } | null = null;
  const tSeries: number[] = [];
  const tCount: number[] = [];
  const tSummary: number[] = [];
  const tZoom: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    tCount.push(await timeIt(() => countStmt.get(syn.recordingId)));
    tSeries.push(await timeIt(async () => (series = (await (await fetch(`${base}/api/recordings/${syn.recordingId}/series?width=1200`)).json()) as typeof series)));
    const mid = syn.rows[200_000]!.captureUs;
    tZoom.push(await timeIt(async () => (await fetch(`${base}/api/recordings/${syn.recordingId}/series?width=1200&from_us=${mid}&to_us=${mid + 60_000_000}`)).json()));
    tSummary.push(await timeIt(async () => (await fetch(`${base}/api/recordings/${syn.recordingId}/summary`)).json()));
  }
  server.close();
  const expected = [...drops.values()].reduce((a, n) => a + n, 0);
  const got = series!.buckets.missing.reduce((a, n) => a + n, 0);
  const kept = got === expected && series!.drops.length === drops.size && series!.buckets.t.length === 1200;
  db.close();
  const base0 = median(tCount);
  const s = median(tSeries);
  const rows: BenchRow[] = [
    { bench: NAME, figure: 'GET …/series?width=1200, median', value: `${fixed(s, 0)} ms`, baseline: `${fixed(base0, 0)} ms count(*)`, ratio: fixed(s / base0, 1), goal: '< 1000 ms', ok: s < 1000 },
    { bench: NAME, figure: 'drops kept in the 1200 buckets', value: `${count(got)} of ${count(expected)} (${series!.drops.length} places)`, baseline: '', ratio: '', goal: 'all', ok: kept },
    { bench: NAME, figure: 'zoomed minute (from_us/to_us), median', value: `${fixed(median(tZoom), 0)} ms`, baseline: `${fixed(base0, 0)} ms count(*)`, ratio: fixed(median(tZoom) / base0, 1), goal: '—', ok: null },
    { bench: NAME, figure: 'GET …/summary (percentiles, checks), median', value: `${fixed(median(tSummary), 0)} ms`, baseline: `${fixed(base0, 0)} ms count(*)`, ratio: fixed(median(tSummary) / base0, 1), goal: '—', ok: null },
  ];
  return {
    rows,
    notes: [
      `${count(frames)} frames, ${drops.size} drop places (${count(expected)} frames missing); ${RUNS} runs each, medians; series max ${fixed(Math.max(...tSeries), 0)} ms. HTTP on loopback, JSON parsed by the client.`,
    ],
  };
});
