/**
 * The floors of any Node-based design: a bare Node process that spawns the test source and reads its stdout.
 * - discard: every byte is dropped. Its CPU per second is what rigcam cannot go below while it reads the stream
 *   through a pipe.
 * - append <file>: every chunk is also appended to the file through a plain fs.WriteStream (one asynchronous write
 *   per chunk, as any Node recorder that keeps the event loop free of disk stalls does).
 * - record <dir>: the least a recorder with rigcam's data contract must do (README, "Data safety" and "Timing"): the
 *   chunks appended as above, the file fdatasync'd every second, and every frame found and logged with its time: the
 *   TS packets scanned in place for video PES starts (no PAT/PMT, no copies), the PTS read, one row per frame in
 *   rigcam's frame table shape committed to SQLite (WAL, synchronous=NORMAL) and one CSV line per frame appended,
 *   both four times a second. Nothing else: no timing SEI, pre-roll, meters, telemetry, HTTP.
 * Prints one JSON line. Usage: node pipe-floor.js <seconds> <width> <height> <fps> [append <file> | record <dir>]
 */
import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { createWriteStream, fdatasync, openSync, write } from 'node:fs';
import path from 'node:path';
import { wallMinusMonoUs } from '../../src/clock.ts';
import { testSourceSpec } from '../../src/sources/test-source.ts';
import { cpuSecondsOf } from '../lib/proc-stat.ts';
import { keepMallocTuningToThisProcess } from '../../src/supervise/child-env.ts';

// As `rigcam serve` does: the unit's malloc variables (runDriver passes them) are for this process, not its ffmpeg.
keepMallocTuningToThisProcess();

interface Row {
  index: number;
  captureUs: number;
  wallUs: number;
  intervalUs: number | null;
  pts: number;
  keyframe: number;
  bytes: number;
}

/** record mode: frame boundaries, their times, and their rows; the bytes go to `video` like append mode's. */
class FloorRecorder {
  readonly video;
  frames = 0;
  private readonly db: Database.Database;
  private readonly insert: Database.Statement;
  private readonly csvFd: number;
  private rows: Row[] = [];
  private open: Row | null = null;
  private lastCaptureUs: number | null = null;
  /** The bytes of a packet cut by a chunk's end (ffmpeg's pipe writes need not end on a packet). */
  private partial = Buffer.alloc(0);

  constructor(dir: string) {
    const videoFd = openSync(path.join(dir, 'floor.ts'), 'wx');
    this.video = createWriteStream('', { fd: videoFd });
    this.db = new Database(path.join(dir, 'floor.db'));
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.exec(`CREATE TABLE frames (recording_id INTEGER NOT NULL, frame_index INTEGER NOT NULL, capture_us INTEGER NOT NULL,
      wall_us INTEGER NOT NULL, interval_us INTEGER, missing_before INTEGER NOT NULL DEFAULT 0, pts INTEGER NOT NULL,
      keyframe INTEGER NOT NULL, bytes INTEGER NOT NULL, flags TEXT NOT NULL DEFAULT '', PRIMARY KEY (recording_id, frame_index)) WITHOUT ROWID`);
    this.insert = this.db.prepare('INSERT INTO frames (recording_id, frame_index, capture_us, wall_us, interval_us, pts, keyframe, bytes) VALUES (1, ?, ?, ?, ?, ?, ?, ?)');
    this.csvFd = openSync(path.join(dir, 'floor.csv'), 'wx');
    setInterval(() => this.flush(), 250);
    setInterval(() => fdatasync(videoFd, () => undefined), 1000);
  }

  scan(chunk: Buffer): void {
    let buf = chunk;
    if (this.partial.length + chunk.length < 188) {
      this.partial = Buffer.concat([this.partial, chunk]);
      return;
    }
    if (this.partial.length) {
      // Only the cut packet is joined (at most 187 bytes of the previous chunk and the rest of this one's first).
      const need = 188 - this.partial.length;
      this.packet(Buffer.concat([this.partial, chunk.subarray(0, need)]), 0);
      buf = chunk.subarray(need);
    }
    const whole = buf.length - (buf.length % 188);
    for (let off = 0; off < whole; off += 188) this.packet(buf, off);
    this.partial = Buffer.from(buf.subarray(whole));
  }

  private packet(b: Buffer, off: number): void {
    if (b[off] !== 0x47) throw new Error('lost TS sync');
    if (!(b[off + 1]! & 0x40)) return this.count(); // no payload unit start
    const afc = (b[off + 3]! >> 4) & 3;
    let pl = off + 4;
    let randomAccess = false;
    if (afc & 2) {
      randomAccess = b[off + 4]! > 0 && (b[off + 5]! & 0x40) !== 0;
      pl += 1 + b[off + 4]!;
    }
    // A video PES start: 00 00 01 E0..EF, with a PTS.
    if (!(afc & 1) || b[pl] !== 0 || b[pl + 1] !== 0 || b[pl + 2] !== 1 || (b[pl + 3]! & 0xf0) !== 0xe0 || !(b[pl + 7]! & 0x80)) return this.count();
    const t = pl + 9;
    const pts = (b[t]! & 0x0e) * 2 ** 29 + b[t + 1]! * 2 ** 22 + (b[t + 2]! >> 1) * 2 ** 15 + b[t + 3]! * 2 ** 7 + (b[t + 4]! >> 1);
    if (this.open) this.rows.push(this.open);
    const captureUs = Math.round((pts * 100) / 9); // the test source stamps capture instants on the monotonic clock
    const intervalUs = this.lastCaptureUs === null ? null : captureUs - this.lastCaptureUs;
    this.lastCaptureUs = captureUs;
    this.open = { index: this.frames++, captureUs, wallUs: captureUs + offsetUs, intervalUs, pts, keyframe: randomAccess ? 1 : 0, bytes: 188 };
  }

  /** A packet that starts no frame: its bytes are the open frame's (PAT/PMT included; a floor need not tell). */
  private count(): void {
    if (this.open) this.open.bytes += 188;
  }

  private flush(): void {
    const rows = this.rows;
    if (!rows.length) return;
    this.rows = [];
    this.db.transaction(() => {
      for (const r of rows) this.insert.run(r.index, r.captureUs, r.wallUs, r.intervalUs, r.pts, r.keyframe, r.bytes);
    })();
    const csv = rows.map((r) => `${r.index},${r.captureUs},${r.wallUs},${r.intervalUs ?? ''},${r.pts},${r.keyframe},${r.bytes}\n`).join('');
    write(this.csvFd, csv, () => undefined);
  }
}

const offsetUs = wallMinusMonoUs();
const [secondsArg, w, h, fpsArg] = process.argv.slice(2, 6).map(Number);
const [mode = 'discard', target] = process.argv.slice(6);
if (!secondsArg || !w || !h || !fpsArg || !['discard', 'append', 'record'].includes(mode) || (mode !== 'discard' && !target)) {
  throw new Error('usage: pipe-floor <seconds> <width> <height> <fps> [append <file> | record <dir>]');
}
const spec = testSourceSpec({ width: w, height: h, fps: fpsArg, gopSeconds: 1, bitrateKbps: 4000, wallMinusMonoUs: offsetUs });
const p = spawn(spec.command, spec.args, { stdio: ['ignore', 'pipe', 'inherit'] });
let chunks = 0;
const recorder = mode === 'record' ? new FloorRecorder(target!) : null;
const out = mode === 'append' ? createWriteStream(target!, { flags: 'wx' }) : recorder?.video ?? null;
p.stdout.on('data', (chunk: Buffer) => {
  chunks += 1;
  out?.write(chunk);
  recorder?.scan(chunk);
});
await new Promise((r) => setTimeout(r, 3000));
const t0 = performance.now();
const n0 = cpuSecondsOf('self');
const f0 = cpuSecondsOf(p.pid!);
const c0 = chunks;
const fr0 = recorder?.frames ?? 0;
await new Promise((r) => setTimeout(r, secondsArg * 1000));
const nodeCpuS = cpuSecondsOf('self') - n0;
const ffmpegCpuS = cpuSecondsOf(p.pid!) - f0;
const windowS = (performance.now() - t0) / 1000;
const frames = recorder ? recorder.frames - fr0 : undefined;
p.kill('SIGTERM');
process.stdout.write(`${JSON.stringify({ nodeCpuS, ffmpegCpuS, windowS, chunksPerS: (chunks - c0) / windowS, frames })}\n`);
process.exit(0);

