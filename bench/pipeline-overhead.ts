/**
 * Pipeline overhead: CPU seconds (user + system, from /proc) of rigcam recording 1280x720 at 30 fps (the Node process
 * plus its ffmpeg child) against bare ffmpeg running the same source command into a .ts file, over the same length
 * of steady recording, for two sources:
 * - x264: the `test` source (lavfi testsrc2 encoded by libx264), its exact arguments;
 * - copy: H.264 with capture timestamps copied by ffmpeg (`-c:v copy`, `-copyts`), the way a camera's own H.264 is
 *   copied (v4l2 input_format h264, encoder copy). The H.264 comes from the test source run upstream as "the
 *   camera", whose CPU is not counted on either side (a camera's encoder is not the box's CPU). ffmpeg costs little
 *   here, so Node's share shows. rigcam runs it through a PATH stand-in for ffmpeg (drivers/ffmpeg-copy-standin.sh);
 *   bare ffmpeg runs the same stand-in into a file.
 * rigcam runs compiled, as a release runs it (not through tsx). The sides never run at once: the windows run in the
 * order of ORDER below (each pair ABBA), so a drift in the shared machine's load hits both sides of every ratio
 * alike; the load average is noted at each window. More figures explain the result: rigcam capturing without
 * recording, a bare Node process that only reads the source's pipe (the floor of any design that reads the stream
 * in Node; the floor ratio is rigcam's Node process while recording over it), and one that also appends what it
 * reads to a file, and one that records it as rigcam's data contract asks, the least of it (appends it, fdatasyncs it,
 * finds and logs every frame into SQLite and CSV): drivers/pipe-floor.ts. Run alone: node --import tsx bench/pipeline-overhead.ts
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync, symlinkSync } from 'node:fs';
import { loadavg } from 'node:os';
import path from 'node:path';
import { wallMinusMonoUs } from '../src/clock.ts';
import { muxArgs } from '../src/sources/ffmpeg-common.ts';
import { testSourceSpec } from '../src/sources/test-source.ts';
import { readTsFrames } from '../src/storage/reconcile.ts';
import { buildForBench, REPO } from './lib/build-dist.ts';
import { runBench, sleep, type BenchRow } from './lib/harness.ts';
import { spawnAsUnit } from './lib/release-serve.ts';
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
  /** The source ffmpeg's share of cpuS (rigcam), or its CPU beside the bare pipe reader (floor). */
  ffmpegCpuS?: number;
  chunksPerS?: number;
}

/** The `test` source's arguments (libx264). */
function x264Args(): string[] {
  return testSourceSpec({ width: W, height: H, fps: FPS, gopSeconds: 1, bitrateKbps: 4000, wallMinusMonoUs: wallMinusMonoUs() }).args;
}

/**
 * The process a camera's own H.264 is copied by (v4l2 input_format h264, encoder copy): H.264 with its capture
 * timestamps in, `-c:v copy` with the sources' own output options out. Its input is the test source's output
 * (drivers/ffmpeg-copy-standin.sh runs that upstream, as the camera).
 */
function copyArgs(out = 'pipe:1'): string[] {
  const mux = muxArgs();
  mux[mux.length - 1] = out;
  return ['-hide_banner', '-nostdin', '-nostats', '-loglevel', 'warning', '-fflags', 'nobuffer', '-probesize', '32768', '-analyzeduration', '0', '-f', 'mpegts', '-i', 'pipe:0', '-c:v', 'copy', ...mux];
}

const STANDIN = path.join(REPO, 'bench/drivers/ffmpeg-copy-standin.sh');
const realFfmpeg = (): string => spawnSync('sh', ['-c', 'command -v ffmpeg']).stdout.toString().trim();
const copyEnv = (out?: string): NodeJS.ProcessEnv => ({ ...process.env, RIGCAM_BENCH_REAL_FFMPEG: realFfmpeg(), RIGCAM_BENCH_COPY_ARGS: copyArgs(out).join('\n') });

/**
 * Bare ffmpeg with the source's own arguments, writing a file: CPU over a window after a 3 s warm-up. `copy`: the
 * copying ffmpeg writes the file, fed by the test source as the camera (the stand-in, whose pid is the copier's).
 */
async function bare(dir: string, seconds: number, copy: boolean): Promise<Window> {
  const out = path.join(dir, `bare-${Date.now()}.ts`);
  const args = x264Args();
  if (args[args.length - 1] !== 'pipe:1') throw new Error(`unexpected source args: ${args.join(' ')}`);
  if (!copy) args[args.length - 1] = out;
  const p = spawn(copy ? STANDIN : 'ffmpeg', args, { stdio: ['ignore', 'ignore', 'pipe'], env: copy ? copyEnv(out) : process.env });
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

/** A compiled driver in its own process, run as the unit runs rigcam (spawnAsUnit); its last stdout line is its JSON result. */
function runDriver(script: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<DriverOut> {
  return new Promise((resolve, reject) => {
    const p = spawnAsUnit(script, args, env);
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!) as DriverOut) : reject(new Error(`${path.basename(script)} exited ${code}: ${out}`))));
  });
}

type Kind = 'bare' | 'rigcam' | 'floor' | 'floor-write' | 'floor-record' | 'copy-bare' | 'copy-rigcam';
const ORDER: Kind[] = ['bare', 'rigcam', 'floor', 'floor-write', 'floor-record', 'copy-bare', 'copy-rigcam', 'copy-rigcam', 'copy-bare', 'floor-record', 'floor-write', 'floor', 'rigcam', 'bare'];
const FLOORS: Kind[] = ['floor', 'floor-write', 'floor-record'];

await runBench('pipeline-overhead', async (ctx) => {
  const half = Math.max(5, Math.round(30 * ctx.scale));
  const side = Math.max(4, Math.round(10 * ctx.scale));
  const dir = ctx.tmpDir('overhead');
  ctx.log('compiling src/ as a release does (tsc -p tsconfig.build.json)');
  const [boxJs, floorJs] = buildForBench(ctx.tmpDir('dist'), ['bench/drivers/overhead-box.ts', 'bench/drivers/pipe-floor.ts']);
  // The copy source for rigcam: `ffmpeg` on its PATH is the stand-in, which runs the real one.
  const standinBin = path.join(dir, 'standin-bin');
  mkdirSync(standinBin);
  symlinkSync(STANDIN, path.join(standinBin, 'ffmpeg'));
  const boxCopyEnv = { ...copyEnv(), PATH: `${standinBin}:${process.env.PATH ?? ''}` };
  const dims = [String(W), String(H), String(FPS)];
  const runs: Array<{ kind: Kind; w: Window; load: number }> = [];
  let idle: DriverOut['idle'] = null;
  for (const kind of ORDER) {
    const load = loadavg()[0]!;
    const short = FLOORS.includes(kind);
    ctx.log(`${kind}: ${short ? side : half} s window (load average ${load.toFixed(2)})`);
    if (kind === 'bare' || kind === 'copy-bare') runs.push({ kind, load, w: await bare(dir, half, kind === 'copy-bare') });
    else if (short) {
      const mode = kind === 'floor-write' ? ['append', path.join(dir, `floor-${Date.now()}.ts`)] : kind === 'floor-record' ? ['record', ctx.tmpDir('floor-record')] : [];
      const r = await runDriver(floorJs!, [String(side), ...dims, ...mode]);
      // The recording floor counts the frames it logged: it must keep up like rigcam.
      runs.push({ kind, load, w: { cpuS: r.nodeCpuS, nodeCpuS: r.nodeCpuS, ffmpegCpuS: r.ffmpegCpuS, windowS: r.windowS, fps: r.frames === undefined ? FPS : r.frames / r.windowS, chunksPerS: r.chunksPerS } });
    } else {
      // The first rigcam run also measures the box capturing without recording.
      const measureIdle = kind === 'rigcam' && !idle;
      const r = await runDriver(boxJs!, [ctx.tmpDir('box'), String(half), ...dims, String(measureIdle ? side : 0)], kind === 'copy-rigcam' ? boxCopyEnv : process.env);
      if (measureIdle) idle = r.idle ?? null;
      runs.push({ kind, load, w: { cpuS: r.nodeCpuS + r.ffmpegCpuS, nodeCpuS: r.nodeCpuS, ffmpegCpuS: r.ffmpegCpuS, windowS: r.windowS, fps: (r.frames ?? 0) / r.windowS } });
    }
  }

  const sum = (k: Kind, f: (w: Window) => number): number => runs.filter((r) => r.kind === k).reduce((s, r) => s + f(r.w), 0);
  // CPU per second of window, so windows a few ms apart in length compare exactly.
  const rate = (k: Kind, f: (w: Window) => number = (w) => w.cpuS): number => sum(k, f) / sum(k, (w) => w.windowS);
  const bareRate = rate('bare');
  const rigRate = rate('rigcam');
  const nodeRate = rate('rigcam', (w) => w.nodeCpuS ?? 0);
  const copyBareRate = rate('copy-bare');
  const copyRigRate = rate('copy-rigcam');
  const copyNodeRate = rate('copy-rigcam', (w) => w.nodeCpuS ?? 0);
  const idleNode = idle ? idle.nodeCpuS / idle.windowS : Number.NaN;
  const floorNode = rate('floor');
  const floorWriteNode = rate('floor-write');
  const floorRecordNode = rate('floor-record');
  const per60 = (r: number): string => `${fixed(r * 60, 2)} CPU s`;
  const ratio = rigRate / bareRate;
  const copyRatio = copyRigRate / copyBareRate;
  const floorRatio = nodeRate / floorNode;
  const baseline = `${per60(bareRate)} bare ffmpeg`;
  const copyBaseline = `${per60(copyBareRate)} bare ffmpeg -c copy`;
  const floorBaseline = `${per60(floorNode)} bare Node pipe read`;
  const recordFloorBaseline = `${per60(floorRecordNode)} bare Node recording`;
  const rows: BenchRow[] = [
    { bench: NAME, figure: `CPU per 60 s recording, x264 (${2 * half} s measured per side)`, value: per60(rigRate), baseline, ratio: fixed(ratio, 3), goal: '≤ 1.05', ok: ratio <= 1.05 },
    { bench: NAME, figure: "  of which rigcam's Node process, recording", value: per60(nodeRate), baseline, ratio: `+${fixed(nodeRate / bareRate, 3)}`, goal: '—', ok: null },
    { bench: NAME, figure: "  rigcam's Node process, capturing, not recording", value: per60(idleNode), baseline, ratio: `+${fixed(idleNode / bareRate, 3)}`, goal: '—', ok: null },
    { bench: NAME, figure: '  bare Node reading the pipe, discarding (floor)', value: per60(floorNode), baseline, ratio: `+${fixed(floorNode / bareRate, 3)}`, goal: '—', ok: null },
    { bench: NAME, figure: '  bare Node reading the pipe, appending it to a file', value: per60(floorWriteNode), baseline, ratio: `+${fixed(floorWriteNode / bareRate, 3)}`, goal: '—', ok: null },
    { bench: NAME, figure: `CPU per 60 s recording, camera H.264 copied (${2 * half} s per side)`, value: per60(copyRigRate), baseline: copyBaseline, ratio: fixed(copyRatio, 3), goal: '≤ 1.5', ok: copyRatio <= 1.5 },
    { bench: NAME, figure: "  of which rigcam's Node process (copy)", value: per60(copyNodeRate), baseline: copyBaseline, ratio: `+${fixed(copyNodeRate / copyBareRate, 3)}`, goal: '—', ok: null },
    { bench: NAME, figure: 'Node process recording (x264) / floor', value: per60(nodeRate), baseline: floorBaseline, ratio: fixed(floorRatio, 2), goal: '≤ 1.5', ok: floorRatio <= 1.5 },
    { bench: NAME, figure: '  bare Node appending the pipe to a file / floor', value: per60(floorWriteNode), baseline: floorBaseline, ratio: fixed(floorWriteNode / floorNode, 2), goal: '—', ok: null },
    { bench: NAME, figure: '  bare Node recording: appending, fdatasync 1/s, every frame found and logged (SQLite, CSV) / floor', value: per60(floorRecordNode), baseline: floorBaseline, ratio: fixed(floorRecordNode / floorNode, 2), goal: '—', ok: null },
    { bench: NAME, figure: 'Node process recording (x264) / bare Node recording (recording floor)', value: per60(nodeRate), baseline: recordFloorBaseline, ratio: fixed(nodeRate / floorRecordNode, 2), goal: '—', ok: null },
  ];
  const notes = [
    `windows (CPU s / s, load average at start): ${runs.map((r) => `${r.kind} ${fixed(r.w.cpuS / r.w.windowS, 3)} (${fixed(r.load, 1)})`).join(', ')}.`,
    `ffmpeg CPU s/s: x264 bare (into a file) ${fixed(bareRate, 3)}, into the pipe of a bare Node reader ${fixed(rate('floor', (w) => w.ffmpegCpuS ?? 0), 3)}, into rigcam ${fixed(rigRate - nodeRate, 3)}; copy bare ${fixed(copyBareRate, 3)}, into rigcam ${fixed(copyRigRate - copyNodeRate, 3)}.`,
    `frame rates: ${runs.filter((r) => r.kind !== 'floor' && r.kind !== 'floor-write').map((r) => `${r.kind} ${fixed(r.w.fps, 1)}`).join(', ')} fps (all must keep up with ${FPS}); the x264 source wrote ${fixed(runs.find((r) => r.kind === 'floor')?.w.chunksPerS ?? 0, 1)} pipe chunks/s.`,
    `floor ffmpeg CPU s/s beside the appending reader: ${fixed(rate('floor-write', (w) => w.ffmpegCpuS ?? 0), 3)}, beside the recording floor: ${fixed(rate('floor-record', (w) => w.ffmpegCpuS ?? 0), 3)}.`,
  ];
  return { rows, notes };
});
