/**
 * Parser for `rpicam-hello --list-cameras` (formerly `libcamera-hello --list-cameras`):
 *
 *   Available cameras
 *   -----------------
 *   0 : imx219 [3280x2464] (/base/soc/i2c0mux/i2c@1/imx219@10)
 *       Modes: 'SRGGB10_CSI2P' : 640x480 [206.65 fps - (1000, 752)/1280x960 crop]
 *                                1640x1232 [41.85 fps - (0, 0)/3280x2464 crop]
 *              'SRGGB8' : 640x480 [206.65 fps - (1000, 752)/1280x960 crop]
 *
 * Newer builds print "[4608x2592 10-bit RGGB]" after the sensor; Pi 5 paths start with
 * /base/axi/pcie@120000/rp1/... The first libcamera-apps release printed bare sizes
 * ("'SRGGB12_CSI2P' : 2028x1080 2028x1520 4056x3040"), with no rate and no crop.
 */

export interface RpicamMode {
  format: string;
  width: number;
  height: number;
  /** [max fps] as listed; empty when this build does not print rates. */
  fps: number[];
  /** [x, y, width, height] of the sensor crop, or null when not printed. */
  crop: [number, number, number, number] | null;
  bit_depth: number | null;
}

export interface RpicamCamera {
  index: number;
  sensor: string;
  path: string;
  /** Full pixel array as printed ("4608x2592"), when present. */
  pixel_array?: { width: number; height: number };
  modes: RpicamMode[];
}

export interface RpicamList {
  cameras: RpicamCamera[];
}

const CAMERA_LINE = /^\s*(\d+)\s*:\s*(\S+)\s*\[([^\]]*)\]\s*\((.*)\)\s*$/;
const FORMAT_HEAD = /^\s*(?:Modes:\s*)?'([A-Za-z0-9_]+)'\s*:(.*)$/;
const SIZE_WITH_INFO =
  /(\d+)x(\d+)\s*\[\s*([\d.]+)\s*fps\s*-\s*\(\s*(-?\d+)\s*,\s*(-?\d+)\s*\)\s*\/\s*(\d+)x(\d+)\s*crop\s*\]/g;
const BARE_SIZE = /(\d+)x(\d+)(?!\s*\[)/g;

/**
 * Bit depth from a libcamera format name: Bayer SRGGB10_CSI2P -> 10, SRGGB8 -> 8, mono R10_CSI2P
 * -> 10. Other names (e.g. Pi 5 compressed PISP_COMP1_RGGB) give null rather than a guess.
 */
export function bitDepthOf(format: string): number | null {
  const m = format.match(/^(?:S[RGB]{4}|R|Y)(\d+)(?:_|$)/);
  return m ? Number(m[1]) : null;
}

function parseSizes(rest: string, format: string): RpicamMode[] {
  const modes: RpicamMode[] = [];
  const bit_depth = bitDepthOf(format);
  const withInfo = [...rest.matchAll(SIZE_WITH_INFO)];
  if (withInfo.length > 0) {
    for (const m of withInfo) {
      modes.push({
        format,
        width: Number(m[1]),
        height: Number(m[2]),
        fps: [Number(m[3])],
        crop: [Number(m[4]), Number(m[5]), Number(m[6]), Number(m[7])],
        bit_depth,
      });
    }
    return modes;
  }
  for (const m of rest.matchAll(BARE_SIZE)) {
    modes.push({ format, width: Number(m[1]), height: Number(m[2]), fps: [], crop: null, bit_depth });
  }
  return modes;
}

export function parseRpicamListCameras(text: string): RpicamList {
  const cameras: RpicamCamera[] = [];
  let cam: RpicamCamera | null = null;
  let format: string | null = null;
  for (const line of text.replace(/\r\n/g, '\n').split('\n')) {
    const c = line.match(CAMERA_LINE);
    if (c) {
      const arr = (c[3] ?? '').match(/(\d+)x(\d+)/);
      cam = {
        index: Number(c[1]),
        sensor: c[2] ?? '',
        path: (c[4] ?? '').trim(),
        modes: [],
      };
      if (arr) cam.pixel_array = { width: Number(arr[1]), height: Number(arr[2]) };
      cameras.push(cam);
      format = null;
      continue;
    }
    if (!cam) continue;
    const f = line.match(FORMAT_HEAD);
    if (f) {
      format = f[1] ?? null;
      if (format) cam.modes.push(...parseSizes(f[2] ?? '', format));
      continue;
    }
    // Continuation lines: more sizes of the current format.
    if (format && /^\s+\d+x\d+/.test(line)) cam.modes.push(...parseSizes(line, format));
  }
  return { cameras };
}
