/**
 * Cold start of the release build: `rigcam serve` (bin/rigcam.js running the compiled dist/, no tsx) on a fresh data
 * dir with one 320x240@30 `test` camera, timed from the spawn to READY=1 on a NOTIFY_SOCKET this benchmark owns
 * (systemd's Type=notify: READY=1 is sent once every camera runs and the API serves). Split by the service's own log
 * lines: "rigcam serving" (modules loaded, database created and migrated, HTTP listening) and READY (cameras
 * started). Baselines in the same run, alternating: a bare `node -e 0`, and a node that only imports
 * dist/cli/serve-command.js (the static module graph of `serve`) and exits. Run alone:
 * node --import tsx bench/cold-start.ts
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { NotifyListener, releaseFor, loadAvg, serveRelease } from './lib/release-serve.ts';
import { runBench, scaled, type BenchRow } from './lib/harness.ts';
import { fixed, percentile } from './lib/stats.ts';

const NAME = 'Cold start (release)';
const GOAL_MS = 1500;

function timeNode(args: string[]): number {
  const t0 = performance.now();
  execFileSync(process.execPath, args, { stdio: 'ignore' });
  return performance.now() - t0;
}

await runBench('cold-start', async (ctx) => {
  const runs = scaled(7, ctx.scale, 3);
  const rel = ctx.tmpDir('release');
  const bin = releaseFor(rel, ctx.log);
  const dist = path.join(path.dirname(path.dirname(bin)), 'dist');
  const loads: string[] = [];
  const ready: number[] = [];
  const serving: number[] = [];
  const bare: number[] = [];
  const imports: number[] = [];
  const importScript = `await import(${JSON.stringify(path.join(dist, 'cli/serve-command.js'))});`;
  for (let i = 0; i < runs; i++) {
    loads.push(loadAvg());
    // Baselines first in even rounds, last in odd ones (ABBA), so drift hits both alike.
    const baselines = (): void => {
      bare.push(timeNode(['-e', '0']));
      imports.push(timeNode(['--input-type=module', '-e', importScript]));
    };
    if (i % 2 === 0) baselines();
    const data = ctx.tmpDir(`cold-${i}`);
    const notify = await NotifyListener.start(path.join(data, 'notify.sock'));
    const s = serveRelease({ bin, dataDir: data, cameras: [{ id: 'cam0', width: 320, height: 240, fps: 30 }], env: { NOTIFY_SOCKET: notify.socket, RIGCAM_CONFIG: '' } });
    try {
      const readyAt = await notify.waitFor('READY=1');
      await s.url;
      ready.push(readyAt - s.spawnedAtMs);
      serving.push(s.logs.find((l) => l.msg === 'rigcam serving')!.atMs - s.spawnedAtMs);
    } finally {
      const code = await s.stop();
      notify.stop();
      if (code !== 0) throw new Error(`rigcam serve exited ${code} on SIGTERM`);
    }
    if (i % 2 === 1) baselines();
    ctx.log(`run ${i + 1}/${runs}: READY after ${fixed(ready.at(-1)!, 0)} ms (load ${loads.at(-1)})`);
  }
  const p = (a: number[]): string => `${fixed(percentile(a, 50), 0)} / ${fixed(Math.max(...a), 0)} ms`;
  const med = (a: number[]): number => percentile(a, 50);
  const rows: BenchRow[] = [
    { bench: NAME, figure: `spawn → READY=1, 1 test camera, fresh data dir, median / max (${runs})`, value: p(ready), baseline: `${p(bare)} bare node -e 0`, ratio: fixed(med(ready) / med(bare), 1), goal: `< ${GOAL_MS} ms`, ok: med(ready) < GOAL_MS },
    { bench: NAME, figure: '  of which: spawn → "rigcam serving" (modules, database, HTTP)', value: p(serving), baseline: `${p(imports)} node importing serve-command.js`, ratio: fixed(med(serving) / med(imports), 2), goal: '—', ok: null },
    { bench: NAME, figure: '  of which: "rigcam serving" → READY=1 (cameras start)', value: `${fixed(med(ready) - med(serving), 0)} ms`, baseline: '', ratio: '', goal: '—', ok: null },
  ];
  const notes = [`READY=1 is the datagram's arrival at this benchmark's NOTIFY_SOCKET; medians, runs alternating with the baselines. Load average per run: ${loads.join('; ')}.`];
  return { rows, notes };
});
