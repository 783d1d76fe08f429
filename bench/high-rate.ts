/**
 * High rate: two `test` cameras at 640x480 and 120 fps recording for 5 minutes (scaled). Frames the source
 * produced but the recording lacks, the writer's queue depth (telemetry), and RSS growth. When the machine cannot
 * encode both streams in real time the source falls behind; its own rate is reported apart from rigcam's losses.
 * Run alone: node --import tsx bench/high-rate.ts
 */
import { command, recordingIds, startBenchBox } from './lib/bench-box.ts';
import { runBench, sleep, type BenchRow } from './lib/harness.ts';
import { checkRecording } from './lib/recording-check.ts';
import { count, fixed, mib } from './lib/stats.ts';
import { StreamTap } from './lib/stream-tap.ts';
import type { StatusMessage } from '../src/runtime/status.ts';

const NAME = 'High rate (2 x 640x480@120)';
const FPS = 120;
const CAMS = ['cam0', 'cam1'];

await runBench('high-rate', async (ctx) => {
  const seconds = Math.max(10, Math.round(300 * ctx.scale));
  const b = await startBenchBox({
    dir: ctx.tmpDir('highrate'),
    cameras: CAMS.map((id) => ({ id, width: 640, height: 480, fps: FPS, gop_seconds: 1, bitrate_kbps: 4000 })),
    extra: { telemetry: { emit_interval_ms: 250 } },
  });
  const taps = new Map(CAMS.map((id) => [id, new StreamTap(b.camera(id).frameSource()!, Math.ceil(FPS * (seconds + 30)))]));
  const maxQueue = new Map(CAMS.map((id) => [id, { frames: 0, bytes: 0 }]));
  const capture = new Map<string, number[]>(CAMS.map((id) => [id, []]));
  const onStatus = (m: StatusMessage): void => {
    if (m.status !== 'telemetry' || !m.camera_id) return;
    const q = m.data.queue_depth;
    const best = maxQueue.get(m.camera_id);
    if (q && best) {
      best.frames = Math.max(best.frames, q.frames);
      best.bytes = Math.max(best.bytes, q.bytes);
    }
    capture.get(m.camera_id)?.push(m.data.capture_fps);
  };
  b.box.on('status', onStatus);
  await sleep(2000);

  ctx.log(`recording ${seconds} s`);
  const ids = recordingIds(await command(b, 'start_recording'));
  const startMono = Number(process.hrtime.bigint() / 1000n);
  global.gc?.();
  const rss0 = process.memoryUsage().rss;
  const heap0 = process.memoryUsage().heapUsed;
  const buffers0 = process.memoryUsage().arrayBuffers;
  const rssSamples: number[] = [];
  for (let t = 0; t < seconds; t += 5) {
    await sleep(Math.min(5, seconds - t) * 1000);
    rssSamples.push(process.memoryUsage().rss);
    if (t % 60 === 55) {
      const m = process.memoryUsage();
      ctx.log(`${t + 5} s, rss ${mib(m.rss)}, heap used ${mib(m.heapUsed)}, buffers ${mib(m.arrayBuffers)}`);
    }
  }
  global.gc?.();
  const rss1 = process.memoryUsage().rss;
  const heap1 = process.memoryUsage().heapUsed;
  const buffers1 = process.memoryUsage().arrayBuffers;
  const stopMono = Number(process.hrtime.bigint() / 1000n);
  const lagAtStop = CAMS.map((id) => {
    const t = taps.get(id)!;
    return t.n ? stopMono - t.captureUs[t.n - 1]! : Number.NaN;
  });
  await command(b, 'stop_recording');
  await sleep(3000); // let the live stream catch up past the stop instant, to count what the stop cut off
  b.box.off('status', onStatus);
  for (const t of taps.values()) t.stop();

  const rows: BenchRow[] = [];
  const notes: string[] = [];
  let lostTotal = 0;
  let dupTotal = 0;
  let framesTotal = 0;
  let liveTotal = 0;
  const rates: string[] = [];
  for (const [k, id] of CAMS.entries()) {
    const tap = taps.get(id)!;
    const rec = ids.find((r) => b.store.recording(r)?.camera_id === id);
    if (rec === undefined) throw new Error(`no recording for ${id}`);
    const c = await checkRecording(b.store, b.root, rec, tap.indexByPts());
    const known = c.liveIndexes.filter((i) => i >= 0);
    const first = known[0] ?? 0;
    const last = known[known.length - 1] ?? -1;
    // Frames captured before the stop instant that had not reached rigcam when the stop waited its stop_wait_ms.
    const beforeStop = tap.firstAtOrAfter(stopMono);
    const tailCut = Math.max(0, beforeStop - 1 - last);
    // The source's own pace: frames it delivered per second of wall time while recording.
    const iStart = tap.firstAtOrAfter(startMono);
    let delivered = 0;
    for (let i = 0; i < tap.n; i++) if (tap.arrivalUs[i]! >= startMono && tap.arrivalUs[i]! < stopMono) delivered += 1;
    const deliveredFps = delivered / ((stopMono - startMono) / 1e6);
    rates.push(`${id} ${fixed(deliveredFps, 1)}`);
    // Missing from the source's PTS sequence, and (cross-check) from the live stream rigcam's demuxer delivered.
    lostTotal += Math.max(c.ptsMissing, c.lostWithin + c.unknown);
    liveTotal += c.fileFrames + Math.max(0, c.ptsMissing);
    dupTotal += c.duplicated;
    framesTotal += c.fileFrames;
    const q = maxQueue.get(id)!;
    rows.push({ bench: NAME, figure: `${id}: writer queue depth max (telemetry)`, value: `${q.frames} frame${q.frames === 1 ? '' : 's'}, ${mib(q.bytes)}`, baseline: '', ratio: '', goal: '—', ok: null });
    notes.push(
      `${id}: ${count(c.fileFrames)} frames in the file, missing from the PTS sequence ${c.ptsMissing}, from the live stream ${c.lostWithin + c.unknown}, rows match: ${c.rowsMatchFile}, rigcam missing_before ${c.missingBefore}, live stream PTS gaps ${tap.sourceGaps(FPS, first, last + 1)}, ` +
        `source lag at stop ${fixed(lagAtStop[k]! / 1000, 0)} ms, frames captured before the stop but not yet delivered when it finished: ${tailCut}` +
        (iStart > 0 ? '' : ' (tap started late)'),
    );
  }
  const growth = rss1 - rss0;
  const half = rssSamples[Math.floor(rssSamples.length / 2)] ?? rss0;
  rows.unshift(
    { bench: NAME, figure: `frames lost by rigcam (${seconds} s)`, value: count(lostTotal), baseline: `${count(liveTotal)} frames in PTS sequence`, ratio: fixed((liveTotal - lostTotal) / liveTotal, 4), goal: '= 0', ok: lostTotal === 0 && dupTotal === 0 },
    { bench: NAME, figure: 'source rate delivered (fps)', value: rates.join(', '), baseline: `${FPS} asked`, ratio: rates.map((r) => fixed(Number(r.split(' ')[1]) / FPS, 3)).join(', '), goal: '—', ok: null },
  );
  rows.push({ bench: NAME, figure: 'RSS growth, record start → end', value: mib(growth), baseline: `${mib(rss0)} at start`, ratio: fixed(rss1 / rss0, 3), goal: '—', ok: null });
  notes.push(
    `RSS at start ${mib(rss0)}, half-way ${mib(half)}, end ${mib(rss1)} (max ${mib(Math.max(...rssSamples))}); growth in the second half ${mib(rss1 - half)}.`,
    global.gc
      ? `after a full GC, JS heap in use ${mib(heap0)} at start, ${mib(heap1)} at the end; Buffers (arrayBuffers) ${mib(buffers0)} → ${mib(buffers1)}.`
      : 'run with node --expose-gc (bench/run.ts does) to see the heap after a full GC.',
    `duplicated frames within the files: ${dupTotal}; ${count(framesTotal)} frames recorded in all.`,
    `telemetry capture_fps median: ${CAMS.map((id) => `${id} ${fixed(medianOf(capture.get(id)!), 1)}`).join(', ')}.`,
  );
  await b.close();
  return { rows, notes };
});

function medianOf(a: number[]): number {
  const s = [...a].sort((x, y) => x - y);
  return s.length ? s[Math.floor(s.length / 2)]! : Number.NaN;
}
