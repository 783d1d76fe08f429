/**
 * Session view and event stream under heavy use (issue 16): a long lab session (500 trials, 50,000 markers, one
 * recording each) loaded page by page over HTTP, as the web page does, against GET /api/health on the same box in
 * the same run, with the box's worst event-loop delay meanwhile; and the box's RSS with 200 idle event-stream
 * clients (connected, never reading) while 2,000 markers are broadcast, against its RSS with none in the same run.
 * Clients run in a child process: only the box's memory is measured.
 * Run alone: node --expose-gc --import tsx bench/session-scale.ts
 */
import { spawn } from 'node:child_process';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { startBenchBox } from './lib/bench-box.ts';
import { runBench, scaled, sleep, type BenchRow } from './lib/harness.ts';
import { count, fixed, median } from './lib/stats.ts';

const NAME = 'Session view & SSE (500 trials, 50k markers; 200 idle clients)';

const rssMb = (): number => {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().rss / 2 ** 20;
};

await runBench('session-scale', async (ctx) => {
  const trials = 500;
  const markersPerTrial = 100;
  const clients = 200;
  const marks = scaled(2000, ctx.scale, 400);
  const b = await startBenchBox({
    dir: ctx.tmpDir('session'),
    cameras: [{ id: 'cam0', width: 320, height: 240, fps: 15 }],
    http: true,
    extra: { http: { host: '127.0.0.1', port: 0, max_event_clients: clients + 10 } },
  });
  const base = b.url!;
  let sessionId = 0;
  ctx.log(`making ${trials} trials, ${count(trials * markersPerTrial)} markers`);
  b.store.transaction(() => {
    const s = b.store.openSession('bench-session');
    sessionId = s.id;
    for (let n = 1; n <= trials; n++) {
      const t = b.store.createTrial({ sessionId: s.id, number: n, label: `t${n}`, triggerSource: 'api', triggerMonoUs: n * 1e6 });
      for (let m = 0; m < markersPerTrial; m++) b.store.addEvent({ kind: 'marker', name: `m${n}-${m}`, sessionId: s.id, trialId: t.id, monoUs: n * 1e6 + m * 1000 });
      const rec = b.store.createRecording({
        trialId: t.id, cameraId: 'cam0', segment: 0, path: `bench-session/bench-session_trial${n}_cam0.ts`, csvPath: `bench-session/bench-session_trial${n}_cam0.csv`,
        codec: 'h264', encoder: 'libx264', width: 320, height: 240, fpsNominal: 15, clock: 'monotonic', mono0Us: 0, wall0Us: 0, triggerSource: 'api', triggerMonoUs: n * 1e6,
      });
      b.store.finishRecording(rec, { state: 'complete', frames: 15 * 60, dropped: n % 3, bytes: 0, reason: null });
    }
  });

  const timeIt = async (url: string): Promise<number> => {
    const t0 = performance.now();
    await (await fetch(url)).arrayBuffer();
    return performance.now() - t0;
  };
  /** Every page of a paged route, as the page's "more" button follows them; returns the time and rows seen. */
  const allPages = async (route: string): Promise<{ ms: number; rows: number }> => {
    const t0 = performance.now();
    let rows = 0;
    let after: number | null = 0;
    while (after !== null) {
      const page = (await (await fetch(`${base}${route}?after_trial=${after}`)).json()) as { trials: unknown[]; next_after_trial: number | null };
      rows += page.trials.length;
      after = page.next_after_trial;
    }
    return { ms: performance.now() - t0, rows };
  };

  // Alternate: health, session (all pages), quality (all pages), so both sides see the same drift.
  const health: number[] = [];
  const session: number[] = [];
  const quality: number[] = [];
  const loop = monitorEventLoopDelay({ resolution: 5 });
  let rowsOk = true;
  for (let i = 0; i < 5; i++) {
    health.push(await timeIt(`${base}/api/health`));
    loop.enable();
    const s = await allPages(`/api/sessions/${sessionId}`);
    const q = await allPages(`/api/sessions/${sessionId}/quality`);
    loop.disable();
    rowsOk &&= s.rows === trials && q.rows === trials;
    session.push(s.ms);
    quality.push(q.ms);
    health.push(await timeIt(`${base}/api/health`));
  }
  const loopMax = loop.max / 1e6;

  // RSS: none, then 200 clients that connect and never read, while markers are broadcast.
  const start = await b.box.handleCommand('start_recording', { session_prefix: 'sse' }, { source: 'api' });
  if (!start.ok) throw new Error(`start: ${start.error}`);
  const markRateOf = async (n: number, from: number): Promise<number> => {
    const t = performance.now();
    for (let i = 0; i < n; i++) await b.box.handleCommand('mark', { label: `m${from + i}` }, { source: 'api' });
    return n / ((performance.now() - t) / 1000);
  };
  const rate0 = await markRateOf(Math.round(marks / 4), 0);
  await sleep(500);
  const rss0 = rssMb();
  const child = spawn(
    process.execPath,
    [
      '-e',
      `const http = require('node:http'); let n = 0;
       for (let i = 0; i < ${clients}; i++) http.get(${JSON.stringify(`${base}/api/events`)}, (res) => { res.pause(); if (res.statusCode === 200 && ++n === ${clients}) console.log('connected'); });
       setInterval(() => {}, 1000);`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the SSE clients did not all connect')), 30_000);
    child.stdout.on('data', (d: Buffer) => d.toString().includes('connected') && (clearTimeout(timer), resolve()));
  });
  const rssConnected = rssMb();
  const t0 = performance.now();
  let peak = rssConnected;
  for (let i = 0; i < marks; i++) {
    await b.box.handleCommand('mark', { label: `n${i}` }, { source: 'api' });
    if (i % 100 === 0) peak = Math.max(peak, process.memoryUsage().rss / 2 ** 20);
  }
  const markRate = marks / ((performance.now() - t0) / 1000);
  const rssAfter = rssMb();
  peak = Math.max(peak, rssAfter);
  await b.box.handleCommand('stop_recording', {}, { source: 'api' });
  child.kill('SIGKILL');
  await b.close();

  const h = median(health);
  const rows: BenchRow[] = [
    { bench: NAME, figure: 'whole session, every page (GET /api/sessions/:id), median', value: `${fixed(median(session), 0)} ms`, baseline: `${fixed(h, 1)} ms /api/health`, ratio: fixed(median(session) / h, 0), goal: '—', ok: rowsOk ? null : false },
    { bench: NAME, figure: 'quality rows, every page (GET …/quality), median', value: `${fixed(median(quality), 0)} ms`, baseline: `${fixed(h, 1)} ms /api/health`, ratio: fixed(median(quality) / h, 0), goal: '—', ok: rowsOk ? null : false },
    { bench: NAME, figure: 'worst event-loop delay while pages load', value: `${fixed(loopMax, 0)} ms`, baseline: '', ratio: '', goal: '< 1000 ms (watchdog 30 s)', ok: loopMax < 1000 },
    { bench: NAME, figure: `RSS, ${clients} idle SSE clients + ${count(marks)} markers (peak)`, value: `${fixed(peak, 0)} MiB`, baseline: `${fixed(rss0, 0)} MiB with none`, ratio: fixed(peak / rss0, 2), goal: '—', ok: null },
    { bench: NAME, figure: `marker rate with ${clients} idle clients`, value: `${fixed(markRate, 0)} /s`, baseline: `${fixed(rate0, 0)} /s with none`, ratio: fixed(markRate / rate0, 2), goal: '—', ok: null },
  ];
  return {
    rows,
    notes: [`RSS connected ${fixed(rssConnected, 0)} MiB, after the markers ${fixed(rssAfter, 0)} MiB; pages of 50 trials`],
  };
});
