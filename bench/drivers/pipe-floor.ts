/**
 * The floor of any Node-based design: a bare Node process that spawns the test source and reads its stdout,
 * discarding every byte. Its CPU per second is what rigcam cannot go below while it reads the stream through a pipe.
 * With an output file it also appends every chunk to that file through a plain fs.WriteStream (one asynchronous
 * write per chunk, as any Node recorder that keeps the event loop free of disk stalls does): the floor of recording.
 * Prints one JSON line. Usage: node pipe-floor.js <seconds> <width> <height> <fps> [output file]
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { wallMinusMonoUs } from '../../src/clock.ts';
import { testSourceSpec } from '../../src/sources/test-source.ts';
import { cpuSecondsOf } from '../lib/proc-stat.ts';
import { keepMallocTuningToThisProcess } from '../../src/supervise/child-env.ts';

// As `rigcam serve` does: the unit's malloc variables (runDriver passes them) are for this process, not its ffmpeg.
keepMallocTuningToThisProcess();

const [secondsArg, w, h, fpsArg] = process.argv.slice(2, 6).map(Number);
const outFile = process.argv[6];
if (!secondsArg || !w || !h || !fpsArg) throw new Error('usage: pipe-floor <seconds> <width> <height> <fps>');
const spec = testSourceSpec({ width: w, height: h, fps: fpsArg, gopSeconds: 1, bitrateKbps: 4000, wallMinusMonoUs: wallMinusMonoUs() });
const p = spawn(spec.command, spec.args, { stdio: ['ignore', 'pipe', 'inherit'] });
let chunks = 0;
const out = outFile ? createWriteStream(outFile, { flags: 'wx' }) : null;
p.stdout.on('data', (chunk: Buffer) => {
  chunks += 1;
  out?.write(chunk);
});
await new Promise((r) => setTimeout(r, 3000));
const t0 = performance.now();
const n0 = cpuSecondsOf('self');
const f0 = cpuSecondsOf(p.pid!);
const c0 = chunks;
await new Promise((r) => setTimeout(r, secondsArg * 1000));
const nodeCpuS = cpuSecondsOf('self') - n0;
const ffmpegCpuS = cpuSecondsOf(p.pid!) - f0;
const windowS = (performance.now() - t0) / 1000;
p.kill('SIGTERM');
process.stdout.write(`${JSON.stringify({ nodeCpuS, ffmpegCpuS, windowS, chunksPerS: (chunks - c0) / windowS })}\n`);
process.exit(0);
