import { z } from 'zod';
import { DEFAULT_TRIGGER_PARAM } from './sensor-trigger.ts';

/**
 * Image controls of a CSI camera. rpicam-vid takes them only on its command line (rpicam-apps core/options.cpp),
 * so a change means a new rpicam-vid run: applied by restarting the source between trials, never during one.
 * Names are rigcam's (snake_case, units in the name); the option each maps to is in RPICAM_CONTROL_OPTIONS.
 * 0 for shutter_us / gain is rpicam-vid's own default: automatic (AEC/AGC decide).
 */
const AWB_MODES = ['auto', 'incandescent', 'tungsten', 'fluorescent', 'indoor', 'daylight', 'cloudy', 'custom'] as const;
const DENOISE_MODES = ['auto', 'off', 'cdn_off', 'cdn_fast', 'cdn_hq'] as const;

const awbGain = z.number().positive().max(32);
/** "r,b" (what rpicam-vid and a control_change string carry) or [r, b] (YAML). */
const awbGains = z.union([
  z.tuple([awbGain, awbGain]),
  z
    .string()
    .regex(/^\s*\d+(\.\d+)?\s*,\s*\d+(\.\d+)?\s*$/, 'awbgains: "red,blue" gains, e.g. "1.5,2.0"')
    .transform((s) => s.split(',').map((x) => Number(x.trim())) as [number, number])
    .pipe(z.tuple([awbGain, awbGain])),
]);

export const rpicamControlsSchema = z.strictObject({
  /** Fixed exposure time in µs (0: automatic). Also caps the frame rate: it cannot exceed 1e6 / shutter_us. */
  shutter_us: z.number().int().min(0).max(200_000_000).optional(),
  /** Fixed analogue gain (0: automatic); the sensor's range applies (libcamera clamps). */
  gain: z.number().min(0).max(64).refine((g) => g === 0 || g >= 1, 'gain: 0 (automatic) or 1 and above').optional(),
  awb: z.enum(AWB_MODES).optional(),
  /** Red and blue gains: fixes the white balance (the AWB algorithm no longer runs). */
  awbgains: awbGains.optional(),
  denoise: z.enum(DENOISE_MODES).optional(),
  /** Focus as a reciprocal distance in dioptres (0: infinity), or "default" (hyperfocal). Cameras without a lens motor ignore it. */
  lens_position: z.union([z.number().min(0).max(100), z.literal('default')]).optional(),
});

export type RpicamControls = z.infer<typeof rpicamControlsSchema>;

/**
 * Hardware-triggered capture (Global Shutter camera, IMX296, XTR input): one frame per external pulse. The same
 * pulses are wired to a GPIO input of mode `sync` (`pulse_line`), whose kernel-stamped edges are matched to the
 * recorded frames per trial (src/sync/pulse-frames.ts).
 */
export const hwTriggerSchema = z.strictObject({
  mode: z.literal('external'),
  /** The GPIO `sync` input that counts the same pulses (its active_low makes the pulse's start the onset). */
  pulse_line: z.number().int().min(0).max(511),
  /** Capture time − pulse onset (µs); estimated per trial when absent. */
  lag_us: z.number().int().min(0).max(10_000_000).optional(),
  /** How far a frame may lie from pulse + lag (µs); default a quarter of the median pulse interval. */
  tolerance_us: z.number().int().min(1).max(10_000_000).optional(),
  /**
   * libcamera's frame timeout for this camera (ms; LIBCAMERA_RPI_CONFIG_FILE camera_timeout_value_ms, see
   * rpi-pipeline-config.ts): how long the pulses may pause before the camera counts as failed (libcamera restarts it,
   * rigcam's stall limit restarts rpicam-vid 5 s later). Default 30 s.
   */
  camera_timeout_ms: z.number().int().min(1000).max(86_400_000).default(30_000),
  /** The sensor driver's trigger switch (a module parameter set to 1 before each start); the GS camera's by default. */
  module_param: z
    .string()
    .regex(/^\/sys\/module\/[a-z0-9_]+\/parameters\/trigger_mode$/, 'module_param: /sys/module/<driver>/parameters/trigger_mode')
    .default(DEFAULT_TRIGGER_PARAM),
});
export type HwTrigger = z.infer<typeof hwTriggerSchema>;
export type RpicamControlName = keyof RpicamControls;
export const RPICAM_CONTROL_NAMES = Object.keys(rpicamControlsSchema.shape) as RpicamControlName[];

const RPICAM_CONTROL_OPTIONS: Record<RpicamControlName, string> = {
  shutter_us: '--shutter',
  gain: '--gain',
  awb: '--awb',
  awbgains: '--awbgains',
  denoise: '--denoise',
  lens_position: '--lens-position',
};

export function isRpicamControl(name: string): name is RpicamControlName {
  return (RPICAM_CONTROL_NAMES as string[]).includes(name);
}

/** The controls as rpicam-vid options; an automatic (0) shutter or gain is left to rpicam-vid's default. */
export function rpicamControlArgs(c: RpicamControls | undefined): string[] {
  if (!c) return [];
  const out: string[] = [];
  for (const name of RPICAM_CONTROL_NAMES) {
    const v = c[name];
    if (v === undefined) continue;
    if ((name === 'shutter_us' || name === 'gain') && v === 0) continue;
    // --shutter without a unit is µs in every release (newer ones also take "10ms").
    out.push(RPICAM_CONTROL_OPTIONS[name], Array.isArray(v) ? v.join(',') : String(v));
  }
  return out;
}

/** One control_change value for a CSI control, checked; the error says what the control takes. */
export function parseRpicamControl(
  name: string,
  value: number | boolean | string,
): { ok: true; name: RpicamControlName; value: NonNullable<RpicamControls[RpicamControlName]> } | { ok: false; error: string } {
  if (!isRpicamControl(name)) return { ok: false, error: `no CSI control "${name}" (CSI cameras have: ${RPICAM_CONTROL_NAMES.join(', ')})` };
  const r = rpicamControlsSchema.shape[name].safeParse(value);
  if (!r.success || r.data === undefined)
    return { ok: false, error: `${name}: ${JSON.stringify(value)} is not valid (${r.success ? 'no value' : r.error.issues.map((i) => i.message).join('; ')})` };
  return { ok: true, name, value: r.data };
}

/** A control's value as reported (control_changed): numbers as numbers, gains as "r,b". */
export function reportedControlValue(v: NonNullable<RpicamControls[RpicamControlName]>): number | string {
  return Array.isArray(v) ? v.join(',') : v;
}
