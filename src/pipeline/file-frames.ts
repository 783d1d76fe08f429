import { spawn } from 'node:child_process';
import { closeSync, createReadStream, openSync, readSync } from 'node:fs';
import { buildTimingSei, type ParsedSeiTiming } from '../timing/sei.ts';
import type { AccessUnit } from './access-unit.ts';
import { accessUnitEs, timingOfEs } from './au-sei.ts';
import { TsDemuxer, type DemuxWarning } from './ts-demux.ts';

/** One frame of a video file as the file itself tells it. */
export interface FileFrame {
  /** 1-based position in the file. */
  position: number;
  /** PTS as carried (33 bits, 90 kHz). For an .mp4, as ffmpeg maps it into MPEG-TS. */
  ptsRaw: number;
  keyframe: boolean;
  /** Bytes of the coded frame without rigcam's SEI (what the timing rows call `bytes`). */
  bytes: number;
  discontinuity: boolean;
  /** rigcam's timing SEI, or null when the frame carries none. */
  sei: ParsedSeiTiming | null;
}

export interface FileFramesResult {
  frames: number;
  warnings: DemuxWarning[];
  /** The file does not end on a TS packet boundary (cut inside a packet). */
  endsInsidePacket: boolean;
}

/** rigcam's timing SEI of an access unit and the coded size without it (what the timing rows call `bytes`). */
export function timingOfFrame(au: AccessUnit): { sei: ParsedSeiTiming | null; bytes: number } {
  const es = accessUnitEs(au.packets);
  const sei = es ? timingOfEs(es) : null;
  return { sei, bytes: sei ? au.payloadBytes - buildTimingSei(sei).length : au.payloadBytes };
}

/** An MPEG-TS file starts with a sync byte and has another one 188 bytes on. */
export function looksLikeTs(file: string): boolean {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(189);
    const n = readSync(fd, b, 0, 189, 0);
    return n >= 1 && b[0] === 0x47 && (n < 189 || b[188] === 0x47);
  } finally {
    closeSync(fd);
  }
}

/**
 * Streams a video file's frames, in file order, through the project's demuxer: an MPEG-TS directly, anything
 * else (.mp4) through `ffmpeg -c copy -f mpegts` (a stream copy keeps every NAL unit, the SEI included).
 * Memory does not grow with the file.
 */
export async function forEachFileFrame(file: string, onFrame: (f: FileFrame) => void): Promise<FileFramesResult> {
  const warnings: DemuxWarning[] = [];
  let position = 0;
  const demux = new TsDemuxer({
    onWarning: (w) => {
      if (warnings.length < 100) warnings.push(w);
    },
    onAccessUnit: (au) => {
      const { sei, bytes } = timingOfFrame(au);
      position += 1;
      onFrame({ position, ptsRaw: au.ptsRaw, keyframe: au.keyframe, bytes, discontinuity: au.discontinuity, sei });
    },
  });
  if (looksLikeTs(file)) {
    await new Promise<void>((resolve, reject) => {
      createReadStream(file, { highWaterMark: 1 << 20 })
        .on('data', (c) => demux.push(c as Buffer))
        .on('end', () => resolve())
        .on('error', reject);
    });
  } else {
    await new Promise<void>((resolve, reject) => {
      const ff = spawn('ffmpeg', ['-hide_banner', '-nostdin', '-v', 'error', '-i', file, '-map', '0:v:0', '-c', 'copy', '-f', 'mpegts', '-'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      ff.stderr.on('data', (d: Buffer) => {
        if (stderr.length < 4000) stderr += d.toString();
      });
      ff.stdout.on('data', (c: Buffer) => demux.push(c));
      ff.on('error', reject);
      ff.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`ffmpeg could not read ${file}: ${stderr.trim() || `exit ${code}`}`))));
    });
  }
  demux.end();
  return {
    frames: position,
    warnings,
    endsInsidePacket: warnings.some((w) => w.kind === 'sync' && /ended inside a packet|without packet sync/.test(w.message)),
  };
}
