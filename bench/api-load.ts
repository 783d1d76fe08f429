/**
 * API under load: GET /api/status from a separate process over 4 keep-alive loopback connections while two
 * cameras record, against a bare Node HTTP server in the same process answering a body of the same size (the
 * floor of Node's HTTP stack on this machine, under the same recording load). Also: whether any frame was lost.
 * Run alone: node --import tsx bench/api-load.ts
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { command, recordingIds, startBenchBox } from './lib/bench-box.ts';
import { runBench, scaled, sleep, type BenchRow } from './lib/harness.ts';
import { checkRecording } from './lib/recording-check.ts';
import { count, fixed } from './lib/stats.ts';
import { StreamTap } from './lib/stream-tap.ts';

const NAME = 'API under load';
const CAMS = ['cam0', 'cam1'];
const FPS = 30;
const CONCURRENCY = 4;
const here = path.dirname(fileURLToPath(import.meta.url));

interface LoadResult {
  requests: number;
  seconds: number;
  rps: number;
  p50Us: number;
  p99Us: number;
  maxUs: number;
  errors: number;
  non2xx: number;
  bytesPerResponse: number;
}

function runLoad(url: string, n: number): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'drivers', 'http-load.ts'), url, String(n), String(CONCURRENCY)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!) as LoadResult) : reject(new Error(`load generator exited ${code}`))));
  });
}

await runBench('api-load', async (ctx) => {
  const n = scaled(5000, ctx.scale, 500);
  const b = await startBenchBox({
    dir: ctx.tmpDir('api'),
    cameras: CAMS.map((id) => ({ id, width: 640, height: 480, fps: FPS, gop_seconds: 1, bitrate_kbps: 2000 })),
    http: true,
  });
  const taps = new Map(CAMS.map((id) => [id, new StreamTap(b.camera(id).frameSource()!, FPS * 600)]));
  await sleep(2500); // a recording starts at the keyframe before the trigger: the tap must have seen it
  const ids = recordingIds(await command(b, 'start_recording'));
  await sleep(1000);

  // The baseline answers what /api/status answers, byte for byte, with no work per request.
  const sample = Buffer.from(await (await fetch(`${b.url}/api/status`)).text());
  const bare = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': sample.length });
    res.end(sample);
  });
  await new Promise<void>((r) => bare.listen(0, '127.0.0.1', () => r()));
  const bareUrl = `http://127.0.0.1:${(bare.address() as AddressInfo).port}/api/status`;

  ctx.log(`${n} requests x2, ${CONCURRENCY} connections, while ${CAMS.length} cameras record 640x480@${FPS}`);
  const base = await runLoad(bareUrl, n);
  const lag = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();
  const rig = await runLoad(`${b.url}/api/status`, n);
  lag.disable();
  bare.close();
  bare.closeAllConnections();
  await sleep(500);
  await command(b, 'stop_recording');
  for (const t of taps.values()) t.stop();

  let lost = 0;
  let missing = 0;
  let frames = 0;
  const detail: string[] = [];
  for (const id of ids) {
    const cam = b.store.recording(id)!.camera_id;
    const c = await checkRecording(b.store, b.root, id, taps.get(cam)!.indexByPts());
    lost += Math.max(c.ptsMissing, c.lostWithin + c.unknown) + c.duplicated + (c.rowsMatchFile ? 0 : 1);
    missing += c.missingBefore;
    frames += c.fileFrames;
    detail.push(`${cam}: ${c.fileFrames} frames, missing from the PTS sequence ${c.ptsMissing}, lost vs live stream ${c.lostWithin}, unknown ${c.unknown}, duplicated ${c.duplicated}, rows match ${c.rowsMatchFile}, missing_before ${c.missingBefore}`);
  }
  await b.close();

  const msOf = (us: number): string => `${fixed(us / 1000, 2)} ms`;
  const rows: BenchRow[] = [
    { bench: NAME, figure: 'GET /api/status requests/s', value: count(rig.rps), baseline: `${count(base.rps)} bare node http`, ratio: fixed(rig.rps / base.rps, 3), goal: '—', ok: rig.errors + rig.non2xx === 0 ? null : false },
    { bench: NAME, figure: 'GET /api/status p99 latency', value: msOf(rig.p99Us), baseline: `${msOf(base.p99Us)} bare node http`, ratio: fixed(rig.p99Us / base.p99Us, 2), goal: '—', ok: null },
    { bench: NAME, figure: `frames lost while serving ${count(rig.requests)} requests`, value: count(lost + missing), baseline: `${count(frames)} frames recorded`, ratio: '', goal: '= 0', ok: lost + missing === 0 },
  ];
  const notes = [
    `rigcam p50 ${msOf(rig.p50Us)}, max ${msOf(rig.maxUs)}, ${rig.errors} errors, ${rig.non2xx} non-2xx, ${count(rig.bytesPerResponse)} bytes per answer; bare p50 ${msOf(base.p50Us)}, max ${msOf(base.maxUs)}.`,
    `rigcam's event-loop delay under the load: p99 ${fixed(lag.percentile(99) / 1e6, 1)} ms, max ${fixed(lag.max / 1e6, 1)} ms.`,
    detail.join('; '),
  ];
  return { rows, notes };
});
