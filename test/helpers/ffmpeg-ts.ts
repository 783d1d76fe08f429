/**
 * Real MPEG-TS streams made by ffmpeg, and what ffprobe says about them, for demuxer tests.
 * Everything goes through pipes: no temporary files.
 */
import { execFileSync } from 'node:child_process';
import { z } from 'zod';
import { PTS_WRAP, TS_PACKET_SIZE } from '../../src/pipeline/access-unit.ts';

export interface TestStreamOptions {
  frames?: number;
  /** WxH of the testsrc2 pattern. */
  size?: string;
  rate?: number;
  /** GOP length (-g). */
  gop?: number;
  /** Consecutive B-frames (-bf). */
  bframes?: number;
  /** -output_ts_offset in seconds, e.g. close to 2^33/90000 to make PTS wrap. */
  outputTsOffset?: number;
  /** Video encoder: libx264 (default) or libx265 for HEVC. */
  encoder?: 'libx264' | 'libx265';
  /** More output options placed before `-f mpegts`, e.g. ['-muxrate', '2M']. */
  extraOutputArgs?: string[];
}

const MAX_BUFFER = 256 * 1024 * 1024;

/** An H.264 MPEG-TS stream of ffmpeg's testsrc2 pattern, as `ffmpeg … -f mpegts -` writes it. */
export function makeTestTs(opts: TestStreamOptions = {}): Buffer {
  return execFileSync('ffmpeg', [...encodeArgs(opts), '-f', 'mpegts', '-'], { maxBuffer: MAX_BUFFER });
}

/** The same pattern as a raw Annex B elementary stream (`-f h264` / `-f hevc`), no TS around it. */
export function makeTestAnnexB(opts: TestStreamOptions = {}): Buffer {
  const format = opts.encoder === 'libx265' ? 'hevc' : 'h264';
  return execFileSync('ffmpeg', [...encodeArgs(opts), '-f', format, '-'], { maxBuffer: MAX_BUFFER });
}

function encodeArgs(opts: TestStreamOptions): string[] {
  const { frames = 90, size = '320x240', rate = 30, gop = 30, bframes = 0, encoder = 'libx264' } = opts;
  const args = ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=${rate}`];
  args.push('-frames:v', String(frames), '-c:v', encoder, '-preset', 'ultrafast', '-g', String(gop));
  args.push('-bf', String(bframes), '-pix_fmt', 'yuv420p');
  if (encoder === 'libx265') args.push('-x265-params', 'log-level=error');
  if (opts.outputTsOffset !== undefined) args.push('-output_ts_offset', String(opts.outputTsOffset));
  args.push(...(opts.extraOutputArgs ?? []));
  return args;
}

const optionalInt = z
  .union([z.number(), z.string()])
  .optional()
  .transform((v) => (v === undefined ? null : Number(v)));

const ProbePacketsSchema = z.object({
  packets: z.array(
    z.object({
      pts: optionalInt,
      dts: optionalInt,
      size: z.union([z.number(), z.string()]).transform(Number),
      flags: z.string(),
    }),
  ),
});

export interface ProbePacket {
  /** PTS as ffprobe reports it (it may unwrap past 2^33; reduce with `% PTS_WRAP` to compare raw). */
  pts: number | null;
  dts: number | null;
  size: number;
  keyframe: boolean;
}

/** The first video stream's packets per `ffprobe -show_packets`, in stream (decode) order. */
export function probePackets(ts: Buffer): ProbePacket[] {
  const out = execFileSync(
    'ffprobe',
    ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=pts,dts,size,flags', '-of', 'json', '-i', 'pipe:0'],
    { input: ts, maxBuffer: MAX_BUFFER },
  );
  return ProbePacketsSchema.parse(JSON.parse(out.toString('utf8'))).packets.map((p) => ({
    pts: p.pts,
    dts: p.dts,
    size: p.size,
    keyframe: p.flags.includes('K'),
  }));
}

const ProbeFramesSchema = z.object({
  frames: z.array(z.object({ key_frame: z.number(), pts: optionalInt })),
});

/** Frames ffprobe decodes from the first video stream (`-show_frames`), in presentation order. */
export function probeFrames(ts: Buffer): { keyframe: boolean; pts: number | null }[] {
  const out = execFileSync(
    'ffprobe',
    ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'frame=key_frame,pts', '-of', 'json', '-i', 'pipe:0'],
    { input: ts, maxBuffer: MAX_BUFFER },
  );
  return ProbeFramesSchema.parse(JSON.parse(out.toString('utf8'))).frames.map((f) => ({
    keyframe: f.key_frame === 1,
    pts: f.pts,
  }));
}

/** Raw 33-bit value of a timestamp ffprobe may have unwrapped. */
export function rawTs(v: number): number {
  return ((v % PTS_WRAP) + PTS_WRAP) % PTS_WRAP;
}

/** The 188-byte packets of a clean stream (which starts on a packet boundary). */
export function splitPackets(ts: Buffer): Buffer[] {
  if (ts.length % TS_PACKET_SIZE !== 0 || ts[0] !== 0x47) throw new Error('not a packet-aligned TS buffer');
  const out: Buffer[] = [];
  for (let i = 0; i < ts.length; i += TS_PACKET_SIZE) out.push(ts.subarray(i, i + TS_PACKET_SIZE));
  return out;
}

/** Header fields of one TS packet, for building edge cases. */
export function packetInfo(pkt: Buffer): { pid: number; pusi: boolean; afc: number; cc: number } {
  return {
    pid: ((pkt[1] & 0x1f) << 8) | pkt[2],
    pusi: (pkt[1] & 0x40) !== 0,
    afc: (pkt[3] >> 4) & 3,
    cc: pkt[3] & 0x0f,
  };
}

/** Small deterministic PRNG, so "random" chunkings and garbage are reproducible: the product's own mulberry32. */
export { mulberry32 as seededRandom } from '../../src/triggers/gpio/sync-pulser.ts';
