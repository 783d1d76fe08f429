/**
 * Pipeline overhead: CPU seconds (user + system, from /proc) of rigcam recording 1280x720 at 30 fps from the `test`
 * source (the Node process plus its ffmpeg child) against bare ffmpeg running the test source's exact arguments into
 * a .ts file, over the same length of steady recording. rigcam runs compiled, as a release runs it (not through
 * tsx). The two never run at once; the 60 s per side run as two 30 s windows in the order bare, rigcam, rigcam,
 * bare, so a drift in the shared machine's load hits both alike. Two more figures explain the result: rigcam
 * capturing without recording, and a bare Node process that only reads the source's pipe (the floor of any design
 * that reads the stream in Node). Run alone: node --import tsx bench/pipeline-overhead.ts
 */
import { spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { wallMinusMonoUs } from '../src/clock.ts';
import { testSourceSpec } from '../src/sources/test-source.ts';
import { readTsFrames } from '../src/storage/reconcile.ts';
import { buildForBench } from './lib/build-dist.ts';
import { runBench, sleep, type BenchRow } from './lib/harness.ts';
import { cpuSecondsOf } from './lib/proc-stat.ts';
import { fixed } from './lib/stats.ts';

const NAME = 'Pipeline overhead (720p30)';
const W = 1280;
const H = 720;
const FPS = 30;

interface Window {
  cpuS: number;
  windowS: number;
  fps: number;
  nodeCpuS?: number;
}

/** Bare ffmpeg with the test source's own arguments, writing a file: CPU over a window after a 3 s warm-up. */
async function bare(dir: string, seconds: number): Promise<Window> {
  const out = path.join(dir, `bare-${Date.now()}.ts`);
  const spec = testSourceSpec({ width: W, height: H, fps: FPS, gopSeconds: 1, bitrateKbps: 4000, wallMinusMonoUs: wallMinusMonoUs() });
  const args = [...spec.args];
  if (args[args.length - 1] !== 'pipe:1') throw new Error(`unexpected test source args: ${args.join(' ')}`);
  args[args.length - 1] = out;
  const p = spawn(spec.command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  p.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => p.on('exit', (code) => r(code)));
  try {
    for (let i = 0; i < 100 && !(existsSync(out) && statSync(out).size > 0); i++) await sleep(100);
    await sleep(3000);
    const t0 = performance.now();
    const c0 = cpuSecondsOf(p.pid!);
    await sleep(seconds * 1000);
    const c1 = cpuSecondsOf(p.pid!);
    const windowS = (performance.now() - t0) / 1000;
    p.kill('SIGTERM');
    await exited;
    const frames = (await readTsFrames(out)).length;
    const ranS = frames / FPS; // -re paces the source: a file of N frames means N frames in N/fps seconds if it kept up
    return { cpuS: c1 - c0, windowS, fps: frames / Math.max(ranS, 1e-9) };
  } catch (e) {
    p.kill('SIGKILL');
    throw new Error(`${(e as Error).message}; ffmpeg said: ${err.trim()}`);
  }
}

interface DriverOut {
  nodeCpuS: number;
  ffmpegCpuS: number;
  windowS: number;
  frames?: number;
  chunksPerS?: number;
  idle?: { nodeCpuS: number; ffmpegCpuS: number; windowS: number } | null;
}

/** A compiled driver in its own process under plain node; its last stdout line is its JSON result. */
function runDriver(script: string, args: string[]): Promise<DriverOut> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!) as DriverOut) : reject(new Error(`${path.basename(script)} exited ${code}: ${out}`))));
  });
}

await runBench('pipeline-overhead', async (ctx) => {
  const half = Math.max(5, Math.round(30 * ctx.scale));
  const side = Math.max(4, Math.round(10 * ctx.scale));
  const dir = ctx.tmpDir('overhead');
  ctx.log('compiling src/ as a release does (tsc -p tsconfig.build.json)');
  const [boxJs, floorJs] = buildForBench(ctx.tmpDir('dist'), ['bench/drivers/overhead-box.ts', 'bench/drivers/pipe-floor.ts']);
  const dims = [String(W), String(H), String(FPS)];
  const runs: Array<{ kind: 'bare' | 'rigcam'; w: Window }> = [];
  let idle: DriverOut['idle'] = null;
  for (const kind of ['bare', 'rigcam', 'rigcam', 'bare'] as const) {
    ctx.log(`${kind}: ${half} s window`);
    if (kind === 'bare') runs.push({ kind, w: await bare(dir, half) });
    else {
      // The first rigcam run also measures the box capturing without recording.
      const r = await runDriver(boxJs!, [ctx.tmpDir('box'), String(half), ...dims, String(idle ? 0 : side)]);
      idle ??= r.idle ?? null;
      runs.push({ kind, w: { cpuS: r.nodeCpuS + r.ffmpegCpuS, nodeCpuS: r.nodeCpuS, windowS: r.windowS, fps: (r.frames ?? 0) / r.windowS } });
    }
  }
  ctx.log(`pipe floor: ${side} s window`);
  const floor = await runDriver(floorJs!, [String(side), ...dims]);

  const sum = (k: 'bare' | 'rigcam', f: (w: Window) => number): number => runs.filter((r) => r.kind === k).reduce((s, r) => s + f(r.w), 0);
  // CPU per second of window, so windows a few ms apart in length compare exactly.
  const bareRate = sum('bare', (w) => w.cpuS) / sum('bare', (w) => w.windowS);
  const rigRate = sum('rigcam', (w) => w.cpuS) / sum('rigcam', (w) => w.windowS);
  const nodeRate = sum('rigcam', (w) => w.nodeCpuS ?? 0) / sum('rigcam', (w) => w.windowS);
  const idleNode = idle ? idle.nodeCpuS / idle.windowS : Number.NaN;
  const floorNode = floor.nodeCpuS / floor.windowS;
  const per60 = (r: number): string => `${fixed(r * 60, 2)} CPU s`;
  const ratio = rigRate / bareRate;
  const baseline = `${per60(bareRate)} bare ffmpeg`;
  const rows: BenchRow[] = [
    { bench: NAME, figure: `CPU per 60 s recording (${2 * half} s measured per side)`, value: per60(rigRate), baseline, ratio: fixed(ratio, 3), goal: '≤ 1.05', ok: ratio <= 1.05 },
    { bench: NAME, figure: "  of which rigcam's Node process, recording", value: per60(nodeRate), baseline, ratio: `+${fixed(nodeRate / bareRate, 3)}`, goal: '—', ok: null },
    { bench: NAME, figure: "  rigcam's Node process, capturing, not recording", value: per60(idleNode), baseline, ratio: `+${fixed(idleNode / bareRate, 3)}`, goal: '—', ok: null },
    { bench: NAME, figure: '  bare Node reading the pipe, discarding (floor)', value: per60(floorNode), baseline, ratio: `+${fixed(floorNode / bareRate, 3)}`, goal: '—', ok: null },
  ];
  const notes = [
    `windows (CPU s / s): ${runs.map((r) => `${r.kind} ${fixed(r.w.cpuS / r.w.windowS, 3)}`).join(', ')}; ffmpeg under rigcam ${fixed(rigRate - nodeRate, 3)} CPU s/s vs bare ${fixed(bareRate, 3)}.`,
    `frame rates: ${runs.map((r) => `${r.kind} ${fixed(r.w.fps, 1)}`).join(', ')} fps (both must keep up with ${FPS}); the source wrote ${fixed(floor.chunksPerS ?? 0, 1)} pipe chunks/s.`,
  ];
  return { rows, notes };
});
