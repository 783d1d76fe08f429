/**
 * What the demuxer costs per TS packet, alone: CPU time and memory allocated (JS heap) and bytes copied, on the
 * chunks a real 720p30 test source writes into its pipe (recorded once, then replayed through a fresh demuxer per
 * pass, the frames kept as the pre-roll ring keeps them). Time is the fastest of 25 passes (CPU time of the process):
 * on a shared VM a slower pass only says the CPU was taken away, and the bare-loop floor is measured the same way. Allocation is counted without GC in the way: the young
 * generation is made big enough (run with --max-semi-space-size=256) and the count is the heap's growth over a pass (median).
 * Usage: node --max-semi-space-size=256 --expose-gc --import tsx bench/drivers/demux-cost.ts [module of TsDemuxer]
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { getHeapStatistics } from 'node:v8';
import { wallMinusMonoUs } from '../../src/clock.ts';
import type { AccessUnit } from '../../src/pipeline/access-unit.ts';
import { testSourceSpec } from '../../src/sources/test-source.ts';
import { keepMallocTuningToThisProcess } from '../../src/supervise/child-env.ts';

// As `rigcam serve` does: the unit's malloc variables (runDriver passes them) are for this process, not its ffmpeg.
keepMallocTuningToThisProcess();

interface Demuxer {
  push(chunk: Buffer): void;
  end(): void;
  readonly stats: { packets: number };
}
type DemuxerClass = new (o: { onAccessUnit: (au: AccessUnit) => void }) => Demuxer;

const modPath = process.argv[2] ?? new URL('../../src/pipeline/ts-demux.ts', import.meta.url).pathname;
const { TsDemuxer } = (await import(pathToFileURL(path.resolve(modPath)).href)) as { TsDemuxer: DemuxerClass };

// The chunks exactly as a 720p30 source paced in real time delivers them (one per frame, as -flush_packets 1 writes).
const spec = testSourceSpec({ width: 1280, height: 720, fps: 30, gopSeconds: 1, bitrateKbps: 4000, wallMinusMonoUs: wallMinusMonoUs() });
const args = [...spec.args];
args.splice(args.indexOf('pipe:1'), 0, '-frames:v', '180');
const chunks: Buffer[] = [];
const child = spawn(spec.command, args, { stdio: ['ignore', 'pipe', 'inherit'] });
child.stdout.on('data', (c: Buffer) => chunks.push(c));
await new Promise((r) => child.on('close', r));
const bytes = chunks.reduce((n, c) => n + c.length, 0);

const inputs = new Set<ArrayBufferLike>(chunks.map((c) => c.buffer));
const gc = (globalThis as { gc?: () => void }).gc;
function pass(keep: AccessUnit[]): { ns: number; heap: number; copied: number; packets: number } {
  gc?.();
  const h0 = getHeapStatistics().used_heap_size;
  const t0 = process.cpuUsage(); // CPU, not wall time: the machine is shared
  const d = new TsDemuxer({ onAccessUnit: (au) => keep.push(au) });
  for (const c of chunks) d.push(c);
  d.end();
  const c = process.cpuUsage(t0);
  const ns = (c.user + c.system) * 1000;
  const heap = getHeapStatistics().used_heap_size - h0;
  // Bytes copied: frames whose packets are not a view of an input chunk.
  const copied = keep.reduce((n, au) => n + (inputs.has(au.packets.buffer) ? 0 : au.packets.length), 0);
  return { ns, heap, copied, packets: d.stats.packets };
}

/** Baseline in the same process: a bare loop that reads each packet's PID and flags (the least any demuxer does). */
function floor(): number {
  const t0 = process.cpuUsage();
  let x = 0;
  for (const c of chunks) for (let p = 0; p + 188 <= c.length; p += 188) x += (((c[p + 1]! & 0x1f) << 8) | c[p + 2]!) ^ c[p + 3]!;
  const u = process.cpuUsage(t0);
  if (x === -1) throw new Error('unreachable');
  return (u.user + u.system) * 1000;
}

for (let i = 0; i < 5; i++) pass([]); // warm-up: optimised code
for (let i = 0; i < 5; i++) floor();
const floors: number[] = [];
const runs = [];
for (let i = 0; i < 25; i++) {
  const keep: AccessUnit[] = [];
  runs.push(pass(keep));
  keep.length = 0;
  floors.push(floor());
}
floors.sort((a, b) => a - b);
runs.sort((a, b) => a.ns - b.ns);
const m = { ...runs[0]!, heap: runs[12]!.heap }; // time: fastest; heap: median
const frames = Math.round(m.packets / (bytes / chunks.length / 188));
process.stdout.write(
  `${JSON.stringify({
    module: modPath,
    chunks: chunks.length,
    packets: m.packets,
    nsPerPacket: +(m.ns / m.packets).toFixed(1),
    floorNsPerPacket: +(floors[0]! / m.packets).toFixed(1),
    heapBytesPerPacket: +(m.heap / m.packets).toFixed(1),
    copiedBytesPerPacket: +(m.copied / m.packets).toFixed(1),
    usPerChunk: +(m.ns / chunks.length / 1000).toFixed(2),
    approxFrames: frames,
  })}\n`,
);
