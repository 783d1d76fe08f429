import { parseListFormatsExt } from './v4l2-formats.ts';
import { parseListCtrls, type V4l2Control, type ControlType } from './v4l2-controls.ts';
import { modesFromFormats, chooseRecordMode, choosePreviewMode, type CaptureMode, type ModeChoice, type ChooseOptions } from './modes.ts';

/**
 * What `rigcam probe --json` prints for one V4L2 camera:
 *
 * ```json
 * {
 *   "device": "/dev/video0",
 *   "modes": [{ "format": "MJPG", "width": 1920, "height": 1080, "fps": [30, 15] }],
 *   "default_record": { "format": "H264", "width": 1920, "height": 1080, "fps": 30 },
 *   "default_preview": { "format": "MJPG", "width": 640, "height": 480, "fps": 15 },
 *   "controls": [{ "name": "auto_exposure", "type": "menu", "min": 0, "max": 3, "step": null,
 *                  "default": 3, "value": 3, "inactive": false, "read_only": false,
 *                  "menu": { "1": "Manual Mode", "3": "Aperture Priority Mode" } }]
 * }
 * ```
 * - `modes[].fps`: offered rates, highest first; empty when the driver lists no intervals.
 *   Stepwise/continuous sizes appear as their maximum plus common sizes inside the range.
 * - `default_record` / `default_preview`: null when no usable mode exists (e.g. raw Bayer only).
 *   `fps` is the rate to run at: the lowest offered rate reaching the target, else the highest.
 * - `controls[]`: numbers or null; `menu` only for menu/intmenu controls whose items were listed
 *   (intmenu items map index to the integer value); `device` only when probed live.
 */
export interface ProbeControl {
  name: string;
  type: ControlType;
  min: number | null;
  max: number | null;
  step: number | null;
  default: number | null;
  value: number | null;
  inactive: boolean;
  read_only: boolean;
  menu?: Record<string, string>;
}

export interface ProbeResult {
  device?: string;
  modes: CaptureMode[];
  default_record: ModeChoice | null;
  default_preview: ModeChoice | null;
  controls: ProbeControl[];
}

export function toProbeControl(c: V4l2Control): ProbeControl {
  const out: ProbeControl = {
    name: c.name,
    type: c.type,
    min: c.min ?? null,
    max: c.max ?? null,
    step: c.step ?? null,
    default: c.default ?? null,
    value: c.value ?? null,
    inactive: c.inactive,
    read_only: c.readOnly,
  };
  if (c.menu) out.menu = { ...c.menu };
  return out;
}

/** Build the probe result from the raw outputs of --list-formats-ext and --list-ctrls-menus. */
export function buildProbeResult(formatsText: string, ctrlsText: string, opts: ChooseOptions & { device?: string } = {}): ProbeResult {
  const modes = modesFromFormats(parseListFormatsExt(formatsText));
  const result: ProbeResult = {
    modes,
    default_record: chooseRecordMode(modes, opts),
    default_preview: choosePreviewMode(modes, opts),
    controls: parseListCtrls(ctrlsText).map(toProbeControl),
  };
  return opts.device ? { device: opts.device, ...result } : result;
}
