// A recording is the source's own bytes: a real test camera (ffmpeg) whose stdout is also teed to a file, a real
// pipeline and recorder, and the recorded .ts compared with the teed source stream by a packet walker written here,
// independent of rigcam's demuxer. Every video packet of a recorded frame is the source's packet byte for byte
// (continuity counter aside: the file renumbers it), except where the timing SEI went in; the frame's elementary
// stream is the source's with exactly that one SEI NAL unit added; PAT/PMT are the source's; no frame is missing
// between the first and the last; the same when a trial start defers its pre-roll past a slow batch of fsyncs while
// live frames arrive. Also: Node's child stdout chunks are never reused by the stream, which the
// demuxer relies on when it keeps slices of them (zero-copy frames, the pre-roll ring).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { monoNowUs, wallMinusMonoUs } from '../../src/clock.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { CameraPipeline } from '../../src/pipeline/camera-pipeline.ts';
import { StartSyncs } from '../../src/recording/start-syncs.ts';
import { testSourceSpec } from '../../src/sources/test-source.ts';
import { openDatabase } from '../../src/storage/database.ts';
import { Store } from '../../src/storage/store.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { startTrialRecording } from '../helpers/trial-recorder.ts';

const PKT = 188;
const RIGCAM_SEI_UUID = Buffer.from('075def9c74dd4c70bc352029a7c82390', 'hex');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Frame {
  pts: number;
  /** Packets with the continuity counter masked out. */
  packets: Buffer[];
  /** The PES payload: the Annex B bytes of the frame. */
  es: Buffer;
}

/** A deliberately plain TS walker (no sync recovery: both streams must be clean). */
function walk(ts: Buffer, videoPid: number): { frames: Frame[]; psi: Map<number, Set<string>>; pids: number[] } {
  assert.equal(ts.length % PKT, 0, 'whole packets');
  const frames: Frame[] = [];
  const psi = new Map<number, Set<string>>();
  const pids: number[] = [];
  let cur: { packets: Buffer[]; es: Buffer[] } | null = null;
  const close = (): void => {
    if (!cur) return;
    const es = Buffer.concat(cur.es);
    const hdr = 9 + es[8]!;
    assert.equal(es.readUIntBE(0, 3), 1, 'PES start code');
    assert.ok(es[7]! & 0x80, 'PES carries a PTS');
    const p = es.subarray(9);
    const pts = ((p[0]! >> 1) & 7) * 2 ** 30 + ((p[1]! << 22) | ((p[2]! >> 1) << 15) | (p[3]! << 7) | (p[4]! >> 1));
    frames.push({ pts, packets: cur.packets, es: es.subarray(hdr) });
    cur = null;
  };
  for (let o = 0; o < ts.length; o += PKT) {
    assert.equal(ts[o], 0x47, `sync byte at ${o}`);
    const pkt = Buffer.from(ts.subarray(o, o + PKT));
    pkt[3] = pkt[3]! & 0xf0; // the continuity counter is the file's own
    const pid = ((pkt[1]! & 0x1f) << 8) | pkt[2]!;
    pids.push(pid);
    if (pid !== videoPid) {
      if (!psi.has(pid)) psi.set(pid, new Set());
      psi.get(pid)!.add(pkt.toString('hex'));
      continue;
    }
    const afc = (pkt[3]! >> 4) & 3;
    const start = afc & 2 ? 5 + pkt[4]! : 4;
    if (pkt[1]! & 0x40) {
      close();
      cur = { packets: [], es: [] };
    }
    if (!cur) continue; // the tee began mid-frame: never the case for a recorded file (checked below)
    cur.packets.push(pkt);
    if (afc & 1 && start < PKT) cur.es.push(pkt.subarray(start));
  }
  close();
  return { frames, psi, pids };
}

function commonPrefix(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

function commonSuffix(a: Buffer, b: Buffer, max: number): number {
  let i = 0;
  while (i < max && a[a.length - 1 - i] === b[b.length - 1 - i]) i++;
  return i;
}

/**
 * A real test camera teed to a file, recorded with pre-roll by the real recorder, and the file compared with the
 * source stream. With `slowStart`, the start is a trial controller's: its batch of fsyncs (with a durable step that
 * takes 400 ms while live frames arrive) is run, and the pre-roll is only written once the start is announced.
 */
async function recordAndCompare(slowStart: boolean): Promise<void> {
  const dir = tmpDir('rigcam-bytes-');
  const rawFile = path.join(dir, 'source.ts');
  const root = path.join(dir, 'recordings');
  const store = new Store(openDatabase(path.join(dir, 'rigcam.db')));
  const spec = (): ReturnType<typeof testSourceSpec> => {
    const s = testSourceSpec({ width: 320, height: 240, fps: 30, gopSeconds: 0.5, bitrateKbps: 600, wallMinusMonoUs: wallMinusMonoUs() });
    // The real source, its stdout also copied to a file: what rigcam received, independent of rigcam.
    return { ...s, command: 'bash', args: ['-c', `exec "$0" "$@" > >(exec tee ${rawFile})`, s.command, ...s.args] };
  };
  const pipeline = new CameraPipeline('cam0', spec, { backoff: { initialMs: 200, maxMs: 1000, healthyAfterMs: 5000 }, ringWindowUs: 1.5e6, ringMaxBytes: 16 << 20, log: silentLogger() });
  let exits = 0;
  pipeline.on('exit', () => (exits += 1));
  try {
    pipeline.start();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no keyframe within 15 s')), 15_000);
      pipeline.on('frame', (f) => f.au.keyframe && (clearTimeout(timer), resolve()));
    });
    await sleep(1500); // the ring holds a second and more
    const syncs = slowStart ? new StartSyncs() : undefined;
    const { recorder } = startTrialRecording({ pipeline, store, root, session: 'bytes', cameraId: 'cam0', source: 'test', prerollUs: 1e6, syncs });
    if (syncs) {
      let arrived = 0;
      const count = (): void => void (arrived += 1);
      pipeline.on('frame', count);
      syncs.also('slow disk', () => sleep(400));
      await syncs.run();
      pipeline.off('frame', count);
      assert.ok(arrived >= 6, `only ${arrived} live frames arrived during the start's fsyncs`);
      // Frames handed to the file: written, or queued in its writer.
      const handed = (): number => recorder.current!.frames + recorder.current!.pending.frames;
      assert.equal(handed(), 0, 'nothing is written before the start is announced');
      syncs.announced();
      assert.equal(handed(), 0, "the pre-roll waits for the announcement's reply to go out");
      await new Promise((r) => setImmediate(r));
      assert.ok(handed() >= 30 + arrived, `${handed()} frames handed to the file after the announcement: the pre-roll (≥ 30) and the ${arrived} that arrived meanwhile expected`);
    }
    await sleep(2500);
    const [s] = await recorder.stop(monoNowUs());
    assert.ok(s);
    await pipeline.stop();
    assert.equal(exits, 1, 'one source run');

    const raw = readFileSync(rawFile);
    const file = readFileSync(s.path);
    const videoPid = 0x100; // ffmpeg's mpegts muxer: first stream
    const src = walk(raw.subarray(0, raw.length - (raw.length % PKT)), videoPid);
    const rec = walk(file, videoPid);

    // The file begins decodable: PAT, PMT, then a keyframe's first packet; PAT/PMT are the source's own.
    assert.deepEqual(rec.pids.slice(0, 3), [0, 0x1000, videoPid]);
    for (const [pid, set] of rec.psi) {
      for (const p of set) assert.ok(src.psi.get(pid)?.has(p), `PSI packet of PID ${pid} not in the source`);
    }
    // Continuity counters renumbered from 0 per PID, +1 per packet with payload.
    const cc = new Map<number, number>();
    for (let o = 0; o < file.length; o += PKT) {
      const pid = ((file[o + 1]! & 0x1f) << 8) | file[o + 2]!;
      const want = cc.has(pid) ? (cc.get(pid)! + ((file[o + 3]! >> 4) & 1)) & 15 : 0;
      assert.equal(file[o + 3]! & 15, want, `continuity counter at ${o}`);
      cc.set(pid, want);
    }

    assert.equal(rec.frames.length, s.frames, 'frames in the file = frames recorded');
    assert.ok(rec.frames.length >= 90, `${rec.frames.length} frames: pre-roll and 2.5 s expected`);
    const srcIndex = new Map(src.frames.map((f, i) => [f.pts, i]));
    const first = srcIndex.get(rec.frames[0]!.pts);
    assert.ok(first !== undefined, 'first recorded frame is in the source');
    for (let k = 0; k < rec.frames.length; k++) {
      const r = rec.frames[k]!;
      const si = srcIndex.get(r.pts);
      assert.equal(si, first + k, `frame ${k + 1}: the source's frame ${first + k} expected (none missing, none reordered)`);
      const o = src.frames[si]!;
      // Elementary stream: the source's, with exactly one NAL unit inserted, rigcam's timing SEI.
      const pre = commonPrefix(r.es, o.es);
      const suf = commonSuffix(r.es, o.es, o.es.length - pre);
      assert.equal(pre + suf, o.es.length, `frame ${k + 1}: elementary stream differs from the source beyond one insertion`);
      const inserted = r.es.subarray(pre, r.es.length - suf);
      assert.ok(inserted.includes(RIGCAM_SEI_UUID), `frame ${k + 1}: the insertion is not rigcam's SEI`);
      assert.ok(inserted.length < 64, `frame ${k + 1}: ${inserted.length} bytes inserted`);
      // Packets: all verbatim but those around the insertion (at most one source packet is re-cut).
      const m = o.packets.length;
      let a = 0;
      while (a < m && r.packets[a]!.equals(o.packets[a]!)) a++;
      let b = 0;
      while (b < m - a && r.packets[r.packets.length - 1 - b]!.equals(o.packets[m - 1 - b]!)) b++;
      assert.ok(a + b >= m - 1, `frame ${k + 1}: ${m - a - b} source packets not verbatim in the file`);
    }
  } finally {
    await pipeline.stop();
    store.close();
  }
}

describe('recorded bytes', () => {
  it("a recording with pre-roll is the source's packets, byte for byte, plus the timing SEI", () => recordAndCompare(false));

  // A trial start queues the pre-roll and writes it only once the start is announced (StartSyncs.afterAnnounce):
  // frames that arrive while the start's fsyncs run must land after it, none lost, none twice, none reordered;
  // and nothing is written before the announcement.
  it('a pre-roll written after the start is announced: the frames that arrived during the fsyncs follow it in order', () => recordAndCompare(true));

  it("child stdout chunks are never overwritten by the stream (slices of them may be kept)", async () => {
    const s = testSourceSpec({ width: 320, height: 240, fps: 60, gopSeconds: 1, bitrateKbps: 2000, wallMinusMonoUs: wallMinusMonoUs() });
    const args = s.args.filter((a) => a !== '-re'); // as fast as it encodes: many full reads
    args.splice(args.indexOf('pipe:1'), 0, '-frames:v', '300');
    const child = spawn(s.command, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    const kept: Array<{ chunk: Buffer; copy: Buffer }> = [];
    child.stdout.on('data', (chunk: Buffer) => kept.push({ chunk, copy: Buffer.from(chunk) }));
    await new Promise((r) => child.on('close', r));
    assert.ok(kept.length > 20, `${kept.length} chunks`);
    const buffers = new Set(kept.map((k) => k.chunk.buffer));
    assert.equal(buffers.size, kept.length, 'every chunk has its own memory');
    for (const [i, k] of kept.entries()) assert.ok(k.chunk.equals(k.copy), `chunk ${i} changed after it was delivered`);
  });
});
