/**
 * Memory of the release build: `rigcam serve` (bin/rigcam.js running the compiled dist/, no tsx, as the systemd unit
 * runs it) with two 640x480@30 `test` cameras, driven over its HTTP API from this process. Two phases on one
 * process: a soak (one trial recording 300 s) and a churn (1000 trials back to back, 0.1 s each). RSS (VmRSS) is
 * read from /proc every 5 s during the soak and every 25 trials during the churn. Baseline in the same run: the RSS
 * of a bare `node` process that only waits. The service runs with the unit's node flags and environment
 * (unitRuntime); RIGCAM_BENCH_NODE_ARGS replaces the flags (for trying V8 heap limits, e.g. "--max-semi-space-size=1"). Run alone: node --import tsx bench/memory.ts
 */
import { spawn } from 'node:child_process';
import { camerasReady, releaseFor, loadAvg, rssOf, serveRelease, unitRuntime } from './lib/release-serve.ts';
import { runBench, scaled, sleep, type BenchRow } from './lib/harness.ts';
import { fixed, mib } from './lib/stats.ts';

const NAME = 'Memory (release)';
const GOAL = 100 * 1024 * 1024;
const FLAT_SLACK = 2 * 1024 * 1024;

async function command(url: string, command: string, payload: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
  const res = await fetch(`${url}/api/commands`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ command, payload }) });
  const body = (await res.json()) as Record<string, unknown>;
  if (res.status !== 200 || body.ok === false) throw new Error(`${command}: ${res.status} ${JSON.stringify(body).slice(0, 300)}`);
  return body;
}

/** RSS of a Node process doing nothing: what any Node service starts from. */
async function bareNodeRss(): Promise<number> {
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
  await sleep(1500);
  const rss = rssOf(child.pid!);
  child.kill();
  return rss;
}

await runBench('memory', async (ctx) => {
  const soakS = scaled(300, ctx.scale, 20);
  const trials = scaled(1000, ctx.scale, 50);
  const rel = ctx.tmpDir('release');
  const bin = releaseFor(rel, ctx.log);
  const data = ctx.tmpDir('memory');
  const { nodeArgs, env: unitEnv } = unitRuntime();
  const bareBefore = await bareNodeRss();
  const cams = [0, 1].map((i) => ({ id: `cam${i}`, width: 640, height: 480, fps: 30 }));
  const s = serveRelease({ bin, dataDir: data, cameras: cams, env: { RIGCAM_CONFIG: '' } }); // run as the unit runs it
  const loads: string[] = [loadAvg()];
  try {
    const url = await s.url;
    const pid = s.child.pid!;
    await camerasReady(url, cams.length);
    await sleep(3000);
    const idle = rssOf(pid);

    ctx.log(`soak: one trial of ${soakS} s`);
    const soak: number[] = [];
    await command(url, 'start_recording', { session: 'soak' });
    for (let t = 0; t < soakS; t += 5) {
      await sleep(5000);
      soak.push(rssOf(pid));
    }
    await command(url, 'stop_recording');
    loads.push(loadAvg());

    ctx.log(`churn: ${trials} trials of 0.1 s`);
    const churn: number[] = [];
    for (let i = 0; i < trials; i++) {
      await command(url, 'start_recording', { session: 'churn' });
      await sleep(100);
      await command(url, 'stop_recording');
      if ((i + 1) % 25 === 0) churn.push(rssOf(pid));
      if ((i + 1) % 200 === 0) ctx.log(`${i + 1}/${trials}, RSS ${mib(churn.at(-1)!)}`);
    }
    loads.push(loadAvg());
    const bareAfter = await bareNodeRss();
    const bare = Math.max(bareBefore, bareAfter);
    const all = [...soak, ...churn];
    const peak = Math.max(...all);
    const halves = (a: number[]): [number, number] => {
      const h = Math.floor(a.length / 2);
      return [Math.max(...a.slice(0, h)), Math.max(...a.slice(h))];
    };
    const half = (a: number[]): string => halves(a).map(mib).join(' → ');
    // Flat: the second half's peak at most FLAT_SLACK above the first half's, in both phases (a creep of a few KiB
    // per trial passes a 1000-trial peak goal and still grows without bound over a longer session).
    const flat = [soak, churn].every((a) => halves(a)[1] - halves(a)[0] <= FLAT_SLACK);
    const rows: BenchRow[] = [
      { bench: NAME, figure: `RSS, two cameras (640x480@30), soak ${soakS} s / churn ${trials} trials, peak`, value: `${mib(Math.max(...soak))} / ${mib(Math.max(...churn))}`, baseline: `${mib(bare)} bare node`, ratio: fixed(peak / bare, 2), goal: '< 100 MiB', ok: peak < GOAL },
      { bench: NAME, figure: '  flat: peak of first half → second half, soak / churn', value: `${half(soak)} / ${half(churn)}`, baseline: `${mib(idle)} idle, cameras running`, ratio: '', goal: '≤ +2 MiB', ok: flat },
    ];
    const notes = [
      `RSS samples (MiB): soak ${soak.map((r) => fixed(r / 1048576, 0)).join(' ')}; churn ${churn.map((r) => fixed(r / 1048576, 0)).join(' ')}. Run as deploy/systemd/rigcam.service runs it: node flags ${nodeArgs.join(' ') || 'none'}, environment ${Object.entries(unitEnv).map(([k, v]) => `${k}=${v}`).join(' ') || 'none'}. Load average at start / after soak / after churn: ${loads.join('; ')}.`,
    ];
    return { rows, notes };
  } finally {
    const code = await s.stop();
    if (code !== 0) ctx.log(`rigcam serve exited ${code} on SIGTERM`);
  }
});
