/**
 * Parser for `v4l2-ctl --list-formats-ext`, in both layouts v4l-utils has printed:
 *
 *   current (v4l-utils >= 1.14)          older
 *   ioctl: VIDIOC_ENUM_FMT               ioctl: VIDIOC_ENUM_FMT
 *   	Type: Video Capture                	Index       : 0
 *                                        	Type        : Video Capture
 *   	[0]: 'MJPG' (Motion-JPEG, compressed) 	Pixel Format: 'MJPG' (compressed)
 *   		Size: Discrete 1280x720         	Name        : Motion-JPEG
 *   			Interval: Discrete 0.033s (30.000 fps)  (sizes and intervals as on the left)
 *
 * Sizes are Discrete, Stepwise ("32x32 - 2592x1944 with step 2/2") or Continuous; intervals the same
 * (stepwise/continuous intervals may or may not carry the "(1.000-30.000 fps)" tail, depending on the
 * v4l-utils version). Indentation may be tabs or spaces (pasted output). Text around the listing
 * (`-D` driver info, `--list-fields`, output formats) is ignored: only Video Capture sections count.
 */

export type IntervalSpec =
  | { kind: 'discrete'; fps: number }
  | { kind: 'stepwise' | 'continuous'; minFps: number; maxFps: number };

export type SizeSpec =
  | { kind: 'discrete'; width: number; height: number; intervals: IntervalSpec[] }
  | {
      kind: 'stepwise' | 'continuous';
      minWidth: number;
      minHeight: number;
      maxWidth: number;
      maxHeight: number;
      stepWidth: number;
      stepHeight: number;
      intervals: IntervalSpec[];
    };

export interface PixelFormatEntry {
  /** Four-character code as printed, trailing spaces trimmed ('Y10 ' -> 'Y10'). */
  fourcc: string;
  description: string;
  compressed: boolean;
  sizes: SizeSpec[];
}

const FMT_NEW = /^\s*\[(\d+)\]:\s*'(.{1,4})'\s*(?:\((.*)\))?\s*$/;
const FMT_OLD = /^\s*Pixel Format\s*:\s*'(.{1,4})'\s*(?:\((.*)\))?\s*$/;
const OLD_NAME = /^\s*Name\s*:\s*(.*?)\s*$/;
const TYPE_LINE = /^\s*Type\s*:\s*(.*?)\s*$/;
const SIZE_DISCRETE = /^\s*Size:\s*Discrete\s+(\d+)x(\d+)/;
const SIZE_RANGE = /^\s*Size:\s*(Stepwise|Continuous)\s+(\d+)x(\d+)\s*-\s*(\d+)x(\d+)(?:\s+with step\s+(\d+)\/(\d+))?/;
const IVAL_DISCRETE = /^\s*Interval:\s*Discrete\s+([\d.]+)s(?:\s*\(([\d.]+) fps\))?/;
const IVAL_RANGE =
  /^\s*Interval:\s*(Stepwise|Continuous)\s+([\d.]+)s\s*-\s*([\d.]+)s(?:\s+with step\s+[\d.]+s)?(?:\s*\(([\d.]+)-([\d.]+) fps\))?/;

function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}

function fpsFromSeconds(seconds: number): number {
  return seconds > 0 ? round3(1 / seconds) : 0;
}

export function parseListFormatsExt(text: string): PixelFormatEntry[] {
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  const hasHeader = lines.some((l) => l.startsWith('ioctl: VIDIOC_ENUM_FMT'));
  // Without an ioctl header (a pasted fragment) everything counts.
  let inSection = !hasHeader;
  let typeIsCapture = true;
  const formats: PixelFormatEntry[] = [];
  let current: PixelFormatEntry | null = null;
  let currentSize: SizeSpec | null = null;

  const startFormat = (fourcc: string, paren: string | undefined): void => {
    currentSize = null;
    if (!inSection || !typeIsCapture) {
      current = null;
      return;
    }
    const desc = (paren ?? '').trim();
    const compressed = /(^|,\s*)compressed$/.test(desc);
    current = {
      fourcc: fourcc.trimEnd(),
      description: desc.replace(/(,\s*)?compressed$/, '').trim(),
      compressed,
      sizes: [],
    };
    formats.push(current);
  };

  for (const line of lines) {
    if (line.startsWith('ioctl:')) {
      inSection = line.startsWith('ioctl: VIDIOC_ENUM_FMT');
      typeIsCapture = true;
      current = null;
      currentSize = null;
      continue;
    }
    // Any other unindented line ("Supported Video Fields:", "Driver Info:", ...) ends the listing.
    if (hasHeader && line.length > 0 && !/^\s/.test(line)) {
      inSection = false;
      current = null;
      currentSize = null;
      continue;
    }
    if (!inSection) continue;

    let m: RegExpMatchArray | null;
    if ((m = line.match(TYPE_LINE))) {
      typeIsCapture = /^Video Capture/.test(m[1] ?? '');
      continue;
    }
    if ((m = line.match(FMT_NEW))) {
      startFormat(m[2] ?? '', m[3]);
      continue;
    }
    if ((m = line.match(FMT_OLD))) {
      startFormat(m[1] ?? '', m[2]);
      continue;
    }
    const fmt = current as PixelFormatEntry | null;
    if (!fmt) continue;
    if ((m = line.match(OLD_NAME))) {
      // Older layout: "Name" carries the description, "(compressed)" the flag.
      fmt.description = m[1] ?? fmt.description;
      continue;
    }
    if ((m = line.match(SIZE_DISCRETE))) {
      currentSize = { kind: 'discrete', width: Number(m[1]), height: Number(m[2]), intervals: [] };
      fmt.sizes.push(currentSize);
      continue;
    }
    if ((m = line.match(SIZE_RANGE))) {
      currentSize = {
        kind: m[1] === 'Stepwise' ? 'stepwise' : 'continuous',
        minWidth: Number(m[2]),
        minHeight: Number(m[3]),
        maxWidth: Number(m[4]),
        maxHeight: Number(m[5]),
        stepWidth: m[6] ? Number(m[6]) : 1,
        stepHeight: m[7] ? Number(m[7]) : 1,
        intervals: [],
      };
      fmt.sizes.push(currentSize);
      continue;
    }
    const size = currentSize as SizeSpec | null;
    if (!size) continue;
    if ((m = line.match(IVAL_DISCRETE))) {
      const fps = m[2] ? round3(Number(m[2])) : fpsFromSeconds(Number(m[1]));
      size.intervals.push({ kind: 'discrete', fps });
      continue;
    }
    if ((m = line.match(IVAL_RANGE))) {
      // Shortest interval = highest rate.
      const maxFps = m[5] ? round3(Number(m[5])) : fpsFromSeconds(Number(m[2]));
      const minFps = m[4] ? round3(Number(m[4])) : fpsFromSeconds(Number(m[3]));
      size.intervals.push({ kind: m[1] === 'Stepwise' ? 'stepwise' : 'continuous', minFps, maxFps });
    }
  }
  return formats;
}
