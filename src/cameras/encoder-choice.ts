import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { runTool, type RunToolOptions } from './run-tool.ts';
import { formatClass } from './modes.ts';

export type EncoderName = 'copy' | 'h264_v4l2m2m' | 'libx264';

export interface ChooseEncoderInput {
  /** The capture mode (only its pixel format matters here). */
  mode: { format: string };
  /** Encoder names ffmpeg lists (`listFfmpegEncoders()`). */
  ffmpegEncoders: string[];
  /** Whether the Pi's hardware encoder node exists (`findHardwareEncoderDevice()` found one). */
  m2mDeviceExists: boolean;
  /** Forces an encoder (config/CLI); 'auto' or empty means choose. */
  override?: string;
}

/**
 * Camera-native H.264 is copied; otherwise the Pi's hardware encoder when ffmpeg has the
 * wrapper AND the device node exists (Pi 4 and older: ffmpeg is often built with h264_v4l2m2m
 * even where no encoder device exists, e.g. on a Pi 5); otherwise libx264.
 * An override is returned as given (the operator knows best; ffmpeg will say if it is wrong).
 */
export function chooseEncoder(input: ChooseEncoderInput): string {
  const override = input.override?.trim();
  if (override && override !== 'auto') return override;
  if (formatClass(input.mode.format) === 'h264') return 'copy';
  if (input.m2mDeviceExists && input.ffmpegEncoders.includes('h264_v4l2m2m')) return 'h264_v4l2m2m';
  return 'libx264';
}

/**
 * Parse `ffmpeg -hide_banner -encoders`: after the legend and the " ------" line, each row is
 * ` V....D libx264              libx264 H.264 / AVC ...` (flags, name, description).
 */
export function parseFfmpegEncoders(text: string): string[] {
  const names: string[] = [];
  let inTable = false;
  for (const line of text.replace(/\r\n/g, '\n').split('\n')) {
    if (/^\s*-{6}\s*$/.test(line)) {
      inTable = true;
      continue;
    }
    if (!inTable) continue;
    const m = line.match(/^\s*[VAS.][F.][S.][X.][B.][D.]\s+(\S+)/);
    if (m?.[1]) names.push(m[1]);
  }
  return names;
}

/** Run `ffmpeg -hide_banner -encoders` and list encoder names; empty when ffmpeg is missing. */
export async function listFfmpegEncoders(opts: RunToolOptions = {}): Promise<string[]> {
  const res = await runTool('ffmpeg', ['-hide_banner', '-encoders'], opts);
  if (!res.found || res.exitCode !== 0) return [];
  return parseFfmpegEncoders(res.stdout);
}

/** sysfs name of the Pi's H.264 encoder node (bcm2835-codec); /dev/video11 on a Pi 4, but found by name. */
export const PI_ENCODER_NODE_NAME = 'bcm2835-codec-encode';

/**
 * Find the hardware H.264 encoder node by its sysfs name under `<rootDir>/sys/class/video4linux`.
 * Returns the device path under `<rootDir>/dev`, or null (Pi 5, non-Pi, or codec driver not loaded).
 */
export async function findHardwareEncoderDevice(rootDir = '/'): Promise<string | null> {
  const sysDir = path.join(rootDir, 'sys/class/video4linux');
  let entries: string[];
  try {
    entries = await readdir(sysDir);
  } catch {
    return null;
  }
  const nodes = entries.filter((e) => /^video\d+$/.test(e)).sort((a, b) => Number(a.slice(5)) - Number(b.slice(5)));
  for (const node of nodes) {
    try {
      const name = (await readFile(path.join(sysDir, node, 'name'), 'utf8')).trim();
      if (name === PI_ENCODER_NODE_NAME) return path.join(rootDir, 'dev', node);
    } catch {
      // A node without a readable name is not the one we look for.
    }
  }
  return null;
}
