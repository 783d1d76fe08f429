/**
 * Child process of bench/pipeline-overhead.ts: rigcam as `rigcam serve` runs it (database with recovery, box, HTTP
 * API, info logging to a file), one test camera. It samples its own CPU time and its ffmpeg child's from /proc over
 * an optional idle window (capturing, not recording), then over a recording window, and prints one JSON line.
 * Usage (compiled, see lib/build-dist.ts): node overhead-box.js <dir> <seconds> <width> <height> <fps> [idle seconds]
 */
import { createWriteStream, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import path from 'node:path';
import { startHttp } from '../../src/api/server.ts';
import { parseConfig, recordingsRoot } from '../../src/config/load.ts';
import { createLogger } from '../../src/log/logger.ts';
import { BoxRuntime } from '../../src/runtime/box-runtime.ts';
import { openStoreWithRecovery } from '../../src/storage/open-store.ts';
import { cpuSecondsOf } from '../lib/proc-stat.ts';
import { keepMallocTuningToThisProcess } from '../../src/supervise/child-env.ts';

// As `rigcam serve` does: the unit's malloc variables (runDriver passes them) are for this process, not its ffmpeg.
keepMallocTuningToThisProcess();

const [dir, secondsArg, w, h, fpsArg, idleArg] = process.argv.slice(2);
if (!dir || !secondsArg || !w || !h || !fpsArg) throw new Error('usage: overhead-box <dir> <seconds> <width> <height> <fps> [idle seconds]');
const seconds = Number(secondsArg);
const idleSeconds = Number(idleArg ?? 0);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * RIGCAM_BENCH_CPU_PROF=<path prefix>: V8 CPU profiles of the steady windows only (start-up excluded), written as
 * <prefix>-idle.cpuprofile and <prefix>-recording.cpuprofile (open in Chrome DevTools, or bench/lib/cpu-profile-top.ts).
 */
const profPrefix = process.env.RIGCAM_BENCH_CPU_PROF || null;
const inspector = profPrefix ? new Session() : null;
if (inspector) {
  inspector.connect();
  await inspector.post('Profiler.enable');
  await inspector.post('Profiler.setSamplingInterval', { interval: 500 });
}
async function profileStart(): Promise<void> {
  if (inspector) await inspector.post('Profiler.start');
}
async function profileStop(name: string): Promise<void> {
  if (!inspector) return;
  const { profile } = await inspector.post('Profiler.stop');
  writeFileSync(`${profPrefix}-${name}.cpuprofile`, JSON.stringify(profile));
}

const config = parseConfig({
  data_dir: dir,
  cameras: [{ id: 'cam0', source: 'test', width: Number(w), height: Number(h), fps: Number(fpsArg) }],
  http: { host: '127.0.0.1', port: 0 },
});
const log = createLogger({ destination: createWriteStream(path.join(dir, 'rigcam.log')) });
const root = recordingsRoot(config);
const { store } = await openStoreWithRecovery(path.join(dir, 'rigcam.db'), root, log);
const box = new BoxRuntime({ config, store, log, root });
const server = await startHttp({ config, box, store, root, log });
await box.initialize();
const cam = box.cameras.get('cam0')!;
const ffPid = cam.stats()?.sourcePid;
if (cam.state !== 'ready' || !ffPid) throw new Error(`camera not ready: ${cam.lastError}`);
await sleep(3000); // past start-up: the windows measure steady state only

let idle: { nodeCpuS: number; ffmpegCpuS: number; windowS: number } | null = null;
if (idleSeconds > 0) {
  await profileStart();
  const i0 = performance.now();
  const n0 = cpuSecondsOf('self');
  const f0 = cpuSecondsOf(ffPid);
  await sleep(idleSeconds * 1000);
  idle = { nodeCpuS: cpuSecondsOf('self') - n0, ffmpegCpuS: cpuSecondsOf(ffPid) - f0, windowS: (performance.now() - i0) / 1000 };
  await profileStop('idle');
}

const start = await box.handleCommand('start_recording', { session_prefix: 'overhead' }, { source: 'cli' });
if (!start.ok) throw new Error(`start failed: ${start.error}`);
await profileStart();
const t0 = performance.now();
const node0 = cpuSecondsOf('self');
const ff0 = cpuSecondsOf(ffPid);
const frames0 = cam.current?.frames ?? 0;
await sleep(seconds * 1000);
const node1 = cpuSecondsOf('self');
const ff1 = cpuSecondsOf(ffPid);
const frames1 = cam.current?.frames ?? 0;
const windowS = (performance.now() - t0) / 1000;
await profileStop('recording');
const stop = await box.handleCommand('stop_recording', {}, { source: 'cli' });
await box.shutdown();
await new Promise<void>((r) => server.close(() => r()));
server.closeAllConnections();
store.close();
process.stdout.write(
  `${JSON.stringify({ nodeCpuS: node1 - node0, ffmpegCpuS: ff1 - ff0, windowS, frames: frames1 - frames0, stopOk: stop.ok, idle })}\n`,
);
process.exit(0);
