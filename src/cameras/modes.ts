import type { PixelFormatEntry, IntervalSpec, SizeSpec } from './v4l2-formats.ts';

/** One capture mode: a pixel format at one size, with the frame rates the camera offers there. */
export interface CaptureMode {
  format: string;
  width: number;
  height: number;
  /** Offered frame rates, highest first. Empty when the driver lists no intervals (rate unknown). */
  fps: number[];
}

export type FormatClass = 'h264' | 'mjpeg' | 'raw' | 'other';

/**
 * Raw formats that ffmpeg's v4l2 input reads and an encoder accepts, with bytes per pixel for the
 * USB bandwidth check. Bayer and packed sensor formats (unicam's pRAA, BA81, ...) are 'other':
 * they need an ISP, so they are never a default.
 */
const RAW_BYTES_PER_PIXEL: Record<string, number> = {
  YUYV: 2, UYVY: 2, YVYU: 2, VYUY: 2, '422P': 2, NV16: 2, RGBP: 2,
  NV12: 1.5, NV21: 1.5, YU12: 1.5, YV12: 1.5,
  GREY: 1,
  RGB3: 3, BGR3: 3,
  RGB4: 4, BGR4: 4, XR24: 4, XB24: 4, AR24: 4, RX24: 4,
};

export function formatClass(fourcc: string): FormatClass {
  if (fourcc === 'H264') return 'h264';
  if (fourcc === 'MJPG' || fourcc === 'JPEG') return 'mjpeg';
  if (fourcc in RAW_BYTES_PER_PIXEL) return 'raw';
  return 'other';
}

export function rawBytesPerSecond(mode: { format: string; width: number; height: number }, fps: number): number {
  const bpp = RAW_BYTES_PER_PIXEL[mode.format] ?? 2;
  return mode.width * mode.height * bpp * fps;
}

/** Sizes we try inside a stepwise/continuous range (the range's maximum is always added). */
const COMMON_SIZES: Array<[number, number]> = [
  [3840, 2160], [2592, 1944], [1920, 1080], [1640, 1232], [1600, 1200], [1280, 960], [1280, 720],
  [1024, 768], [800, 600], [640, 480], [320, 240],
];
/** Rates we offer inside a stepwise/continuous interval range (its maximum is always added). */
const COMMON_RATES = [120, 90, 60, 50, 30, 25, 24, 20, 15, 10, 5];

function ratesOf(intervals: IntervalSpec[]): number[] {
  const out = new Set<number>();
  for (const iv of intervals) {
    if (iv.kind === 'discrete') {
      if (iv.fps > 0) out.add(iv.fps);
    } else {
      if (iv.maxFps > 0) out.add(iv.maxFps);
      for (const r of COMMON_RATES) if (r >= iv.minFps && r <= iv.maxFps) out.add(r);
    }
  }
  return [...out].sort((a, b) => b - a);
}

function sizesOf(size: SizeSpec): Array<[number, number]> {
  if (size.kind === 'discrete') return size.width > 0 && size.height > 0 ? [[size.width, size.height]] : [];
  // Rockchip's ISP nodes report "Stepwise 32x16 - 0x0": a range that contains nothing.
  if (size.maxWidth < size.minWidth || size.maxHeight < size.minHeight || size.maxWidth === 0) return [];
  const fits = ([w, h]: [number, number]): boolean =>
    w >= size.minWidth && w <= size.maxWidth && h >= size.minHeight && h <= size.maxHeight &&
    (w - size.minWidth) % size.stepWidth === 0 && (h - size.minHeight) % size.stepHeight === 0;
  const list: Array<[number, number]> = [[size.maxWidth, size.maxHeight]];
  for (const s of COMMON_SIZES) if (fits(s) && !(s[0] === size.maxWidth && s[1] === size.maxHeight)) list.push(s);
  return list;
}

/**
 * Flatten a parsed listing into modes. Cameras repeat sizes and intervals (seen on real UVC
 * firmware), so entries with the same format and size are merged and rates de-duplicated.
 */
export function modesFromFormats(formats: PixelFormatEntry[]): CaptureMode[] {
  const byKey = new Map<string, CaptureMode>();
  for (const f of formats) {
    for (const size of f.sizes) {
      const rates = ratesOf(size.intervals);
      for (const [width, height] of sizesOf(size)) {
        const key = `${f.fourcc} ${width}x${height}`;
        const existing = byKey.get(key);
        if (existing) {
          existing.fps = [...new Set([...existing.fps, ...rates])].sort((a, b) => b - a);
        } else {
          byKey.set(key, { format: f.fourcc, width, height, fps: [...rates] });
        }
      }
    }
  }
  return [...byKey.values()];
}

export interface ModeChoice {
  format: string;
  width: number;
  height: number;
  fps: number;
}

/**
 * USB 2.0 high-speed bandwidth we allow one raw (uncompressed) camera stream.
 * Theoretical isochronous maximum: 3 transactions x 1024 bytes per 125 us microframe
 * = 24.576 MB/s. We budget 20 MB/s (about 80 %) because the bus also carries protocol overhead
 * and, on a Pi, other devices; UVC cameras themselves cap raw modes near that figure (e.g. YUYV
 * 640x480 at 30 fps = 18.4 MB/s is typically the largest raw mode offered at 30 fps).
 */
export const USB2_RAW_BUDGET_BYTES_PER_SEC = 20_000_000;

/**
 * Largest frame we transcode by default: the Pi 4 hardware encoder (h264_v4l2m2m) handles up to
 * 1920x1080, and libx264 on a Pi 5 cannot keep up beyond 1080p30. Camera-native H.264 is copied,
 * so it is not capped.
 */
export const DEFAULT_MAX_TRANSCODE_PIXELS = 1920 * 1080;

export interface ChooseOptions {
  targetFps?: number;
  usbBudgetBytesPerSec?: number;
  maxTranscodePixels?: number;
}

const CLASS_RANK: Record<FormatClass, number> = { h264: 0, mjpeg: 1, raw: 2, other: 3 };

/** Frame rates count as reaching a target within 2 % (29.97 reaches 30). */
function reaches(rate: number, target: number): boolean {
  return rate >= target * 0.98;
}

/** The rate to run a mode at for a target: the lowest offered rate that reaches it, else the highest. */
function rateFor(mode: CaptureMode, target: number): number {
  const ok = mode.fps.filter((r) => reaches(r, target));
  if (ok.length > 0) {
    const lowest = Math.min(...ok);
    // A range that contains the target exactly lists the target itself (COMMON_RATES), so this
    // picks 30 rather than 60 when both are offered.
    return lowest;
  }
  return mode.fps[0] ?? target;
}

function usable(mode: CaptureMode, fps: number, opts: Required<ChooseOptions>): boolean {
  const cls = formatClass(mode.format);
  if (cls === 'other') return false;
  if (cls !== 'h264' && mode.width * mode.height > opts.maxTranscodePixels) return false;
  if (cls === 'raw' && rawBytesPerSecond(mode, fps) > opts.usbBudgetBytesPerSec) return false;
  return true;
}

function fill(opts: ChooseOptions): Required<ChooseOptions> {
  return {
    targetFps: opts.targetFps ?? 30,
    usbBudgetBytesPerSec: opts.usbBudgetBytesPerSec ?? USB2_RAW_BUDGET_BYTES_PER_SEC,
    maxTranscodePixels: opts.maxTranscodePixels ?? DEFAULT_MAX_TRANSCODE_PIXELS,
  };
}

/**
 * Default recording mode: camera-native H.264 first (copied, no CPU), then MJPEG, then raw (limited
 * by USB bandwidth); within the first class that has a mode reaching the target rate, the largest
 * such mode. If no mode reaches the target, the fastest usable mode (then the largest). Modes
 * whose rate the driver does not list are used only when no mode lists one, at the target rate.
 */
export function chooseRecordMode(modes: CaptureMode[], options: ChooseOptions = {}): ModeChoice | null {
  const opts = fill(options);
  const target = opts.targetFps;
  const known = modes.filter((m) => m.fps.length > 0);
  const pool = known.length > 0 ? known : modes;
  const candidates = pool
    .map((m) => ({ m, fps: rateFor(m, target) }))
    .filter(({ m, fps }) => usable(m, fps, opts));
  if (candidates.length === 0) return null;
  const byPreference = (a: (typeof candidates)[number], b: (typeof candidates)[number]): number =>
    CLASS_RANK[formatClass(a.m.format)] - CLASS_RANK[formatClass(b.m.format)] ||
    b.m.width * b.m.height - a.m.width * a.m.height ||
    b.fps - a.fps;
  const reaching = candidates.filter(({ fps }) => reaches(fps, target));
  let best;
  if (reaching.length > 0) {
    best = [...reaching].sort(byPreference)[0];
  } else {
    best = [...candidates].sort(
      (a, b) => b.fps - a.fps || b.m.width * b.m.height - a.m.width * a.m.height || byPreference(a, b),
    )[0];
  }
  if (!best) return null;
  return { format: best.m.format, width: best.m.width, height: best.m.height, fps: best.fps };
}

export interface PreviewOptions extends ChooseOptions {
  /** Width the preview aims at. */
  previewWidth?: number;
  /** Modest rate the preview should reach. */
  previewFps?: number;
}

/**
 * Default preview mode: the mode closest to ~640 wide that reaches a modest rate (15 fps),
 * preferring MJPEG (served as-is), then raw, then H.264.
 */
export function choosePreviewMode(modes: CaptureMode[], options: PreviewOptions = {}): ModeChoice | null {
  const opts = fill(options);
  const wantWidth = options.previewWidth ?? 640;
  const wantFps = options.previewFps ?? 15;
  const rank: Record<FormatClass, number> = { mjpeg: 0, raw: 1, h264: 2, other: 3 };
  const known = modes.filter((m) => m.fps.length > 0);
  const pool = (known.length > 0 ? known : modes)
    .map((m) => ({ m, fps: rateFor(m, wantFps) }))
    .filter(({ m, fps }) => usable(m, fps, opts));
  if (pool.length === 0) return null;
  const score = ({ m, fps }: (typeof pool)[number]): number =>
    Math.abs(Math.log2(m.width / wantWidth)) * 10 + (reaches(fps, wantFps) ? 0 : 100);
  const best = [...pool].sort(
    (a, b) => score(a) - score(b) || rank[formatClass(a.m.format)] - rank[formatClass(b.m.format)] || a.m.width - b.m.width,
  )[0];
  if (!best) return null;
  return { format: best.m.format, width: best.m.width, height: best.m.height, fps: best.fps };
}
