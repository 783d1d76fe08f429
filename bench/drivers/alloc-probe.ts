/**
 * Where the garbage comes from: rigcam as `rigcam serve` runs it (two 640x480@30 test cameras, HTTP API), with V8's
 * sampling heap profiler counting every allocation, collected or not, over two windows of the same length: one trial
 * recording (steady capture and recording), then back-to-back 0.1 s trials driven over HTTP by a separate process (so
 * the client's allocations are not counted). Prints the top allocation sites of each window, bytes per second.
 * Usage: node --import tsx bench/drivers/alloc-probe.ts <dir> <seconds> [top]
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { Session } from 'node:inspector/promises';
import path from 'node:path';
import { createLogger } from '../../src/log/logger.ts';
import { command, startBenchBox } from '../lib/bench-box.ts';

const [dir, secondsArg, topArg] = process.argv.slice(2);
if (!dir || !secondsArg) throw new Error('usage: alloc-probe <dir> <seconds> [top]');
const seconds = Number(secondsArg);
const top = Number(topArg ?? 25);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// Logging at info to a file, as the service logs.
const b = await startBenchBox({
  dir,
  cameras: [0, 1].map((i) => ({ id: `cam${i}`, width: 640, height: 480, fps: 30 })),
  http: true,
  log: createLogger({ destination: createWriteStream(path.join(dir, 'rigcam.log')) }),
});
const url = b.url!;

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: ProfileNode[];
}
const inspector = new Session();
inspector.connect();

async function sampled(run: () => Promise<void>): Promise<Map<string, number>> {
  await inspector.post('HeapProfiler.startSampling', { samplingInterval: 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  await run();
  const { profile } = (await inspector.post('HeapProfiler.stopSampling')) as unknown as { profile: { head: ProfileNode } };
  const sites = new Map<string, number>();
  const walk = (n: ProfileNode, stack: string[]): void => {
    const f = n.callFrame;
    const here = `${f.functionName || '(anon)'} ${f.url.replace(/^.*\/(src|node_modules)\//, '$1/')}:${f.lineNumber + 1}`;
    const s = [...stack, here];
    if (n.selfSize) {
      // The allocating function and its two callers: which of rigcam's paths the bytes belong to.
      const key = s.slice(-3).reverse().join(' < ');
      sites.set(key, (sites.get(key) ?? 0) + n.selfSize);
      // And the first of rigcam's files on the way from the event loop: the subsystem that started the work.
      const entry = s.find((x) => x.includes(' src/'))?.replace(/^.* (src\/[^:]+):.*$/, '$1') ?? '(outside src/)';
      sites.set(`[from] ${entry}`, (sites.get(`[from] ${entry}`) ?? 0) + n.selfSize);
    }
    for (const c of n.children) walk(c, s);
  };
  walk(profile.head, []);
  return sites;
}

function print(name: string, sites: Map<string, number>): void {
  const total = [...sites].filter(([k]) => !k.startsWith('[from]')).reduce((a, [, b]) => a + b, 0);
  process.stdout.write(`== ${name}: ${(total / seconds / 1024).toFixed(0)} KiB/s allocated\n`);
  for (const [k, v] of [...sites].sort((a, b) => b[1] - a[1]).slice(0, top)) process.stdout.write(`${(v / seconds / 1024).toFixed(1).padStart(8)} KiB/s  ${k}\n`);
}

await sleep(3000);
await command(b, 'start_recording', { session: 'soak' });
await sleep(3000);
print('one trial recording', await sampled(() => sleep(seconds * 1000)));
await command(b, 'stop_recording');

// The client in its own process, as the memory benchmark drives the service.
const client = `const url = ${JSON.stringify(url)}; const end = Date.now() + ${seconds * 1000}; let n = 0;
const cmd = async (command, payload = {}) => { const r = await fetch(url + '/api/commands', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ command, payload }) }); if (r.status !== 200) throw new Error(command + ' ' + r.status + ' ' + await r.text()); await r.json(); };
(async () => { while (Date.now() < end) { await cmd('start_recording', { session: 'churn' }); await new Promise((r) => setTimeout(r, 100)); await cmd('stop_recording'); n++; } console.log(n); })();`;
let trials = '';
const run = (): Promise<void> =>
  new Promise((resolve, reject) => {
    trials = '';
    const c = spawn(process.execPath, ['-e', client], { stdio: ['ignore', 'pipe', 'inherit'] });
    c.stdout.on('data', (d: Buffer) => (trials += d.toString()));
    c.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`client exited ${code}`))));
  });
await run(); // warm-up: the session already holds trials when the window starts
const warmUp = trials.trim();
const sites = await sampled(run);
print(`back-to-back trials (${warmUp} in the warm-up, ${trials.trim()} in the window)`, sites);
await b.close();
process.exit(0);
