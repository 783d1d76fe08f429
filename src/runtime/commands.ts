import { z } from 'zod';
import { labelSchema } from '../text/label.ts';

/**
 * The command protocol of the seed (phase4-runtime-bridge): names, aliases and payload shapes. Payloads are
 * accepted in the seed's nested form (`camera_id: {backend, stable_id}`, `descriptor: {...}`) and in the flat
 * form the Raspberry Pi logger host sends (`camera_dev_path`, `camera_stable_id`, `session_dir`, ...).
 */
export const ALIASES: Readonly<Record<string, string>> = {
  record: 'start_recording',
  pause: 'pause_recording',
  stop: 'stop_recording',
  start: 'start_recording',
  status: 'get_status',
  marker: 'mark',
};

const sessionName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'session names use 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit');
const cameraRef = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$/, 'camera ids use 1-32 letters, digits, "-" or "_"');
// One label rule for every transport (HTTP, serial, module, GPIO marker names): src/text/label.ts.
const label = labelSchema(200);
const metadata = z.record(z.string().max(64), z.union([z.string().max(2000), z.number(), z.boolean(), z.null()])).refine((m) => Object.keys(m).length <= 50, 'at most 50 metadata keys');

const cameraIdObject = z.strictObject({ backend: z.string().max(32), stable_id: z.string().min(1).max(200) });

/** A host string flag sent as a boolean or as "true"/"false" (the seed's settings window sends strings). */
const boolish = z.union([z.boolean(), z.enum(['true', 'false']).transform((v) => v === 'true')]);
/** A number sent as a number or a numeric string ("15"). */
const numberish = z.union([z.number(), z.string().regex(/^\d+(\.\d+)?$/, 'a number').transform(Number)]);

/**
 * `assign_device`, in the seed's nested form (`camera_id`, `descriptor`) and in the flat form RPi_Logger's host
 * sends (`command_protocol.py` assign_device: hw-fixtures/rpi-logger/SOURCE.md). Every host field is named here so
 * a misspelt one is refused instead of silently dropped; the host's `camera_audio_*` family (HEAD adds fields to
 * it) is accepted as scalars.
 */
export const assignDeviceSchema = z
  .object({
    camera_id: z.union([cameraRef, cameraIdObject]).optional(),
    descriptor: z
      .strictObject({
        name: z.string().max(100).optional(),
        device_path: z.string().max(300).optional(),
        usb_path: z.string().max(300).nullable().optional(),
      })
      .optional(),
    // flat (module host) form
    camera_dev_path: z.string().max(300).optional(),
    camera_stable_id: z.string().max(200).optional(),
    camera_name: z.string().max(100).optional(),
    display_name: z.string().max(100).optional(),
    camera_backend: z.string().max(32).optional(),
    /** The host's kind: usb → v4l2, picam/csi → rpicam, test only when asked for. */
    camera_type: z.enum(['usb', 'picam', 'csi', 'test', 'v4l2', 'rpicam']).optional(),
    camera_index: z.number().int().min(0).max(64).nullable().optional(),
    /** The host's id of the device (`usb:usb1-1.2`, `picam:0`): echoed in every status about it. */
    device_id: z.string().min(1).max(200).optional(),
    device_type: z.string().max(64).optional(),
    port: z.string().max(300).nullable().optional(),
    baudrate: z.number().int().min(0).optional(),
    is_wireless: z.boolean().optional(),
    is_network: z.boolean().optional(),
    is_camera: z.boolean().optional(),
    network_address: z.string().max(200).optional(),
    network_port: z.number().int().min(0).max(65535).optional(),
    sounddevice_index: z.number().int().min(0).optional(),
    audio_channels: z.number().int().min(0).optional(),
    audio_sample_rate: z.number().min(0).optional(),
    camera_hw_model: z.string().max(200).optional(),
    camera_location: z.string().max(500).optional(),
    session_dir: z.string().max(300).optional(),
  })
  .catchall(z.union([z.string().max(300), z.number(), z.boolean(), z.null()]))
  .superRefine((p, ctx) => {
    for (const k of Object.keys(p))
      if (!(k in assignKnown) && !/^camera_audio_[a-z0-9_]{1,40}$/.test(k)) ctx.addIssue({ code: 'custom', path: [k], message: `unknown key "${k}"` });
  });
/**
 * The keys RPi_Logger's host sends that rigcam accepts and ignores: the one list (hw-fixtures/rpi-logger/SOURCE.md).
 * Its assign_device (HEAD `command_protocol.py` L132-238) carries fields for serial, wireless, network and audio
 * devices on every device kind (`device_type`, `port`, `baudrate`, `is_wireless`, `is_network`, then when set
 * `network_address`, `network_port`, `sounddevice_index`, `audio_channels`, `audio_sample_rate`, `is_camera`), and
 * camera fields rigcam has no use for (`camera_hw_model`, `camera_location`: it probes the device itself;
 * `session_dir`: sessions come with start_session / record). Its framing keys (`timestamp`, `command_id`) are taken
 * off by module mode (HOST_FRAMING_KEYS in module-mode.ts); its other commands' keys (`session_dir`,
 * `trial_number`, `trial_label`; `device_id` of unassign_device) are all understood.
 */
export const HOST_IGNORED_ASSIGN_KEYS = [
  'device_type',
  'port',
  'baudrate',
  'is_wireless',
  'is_network',
  'is_camera',
  'network_address',
  'network_port',
  'sounddevice_index',
  'audio_channels',
  'audio_sample_rate',
  'camera_hw_model',
  'camera_location',
  'session_dir',
] as const;
const assignKnown: Record<string, true> = Object.fromEntries(
  [
    ...['camera_id', 'descriptor', 'camera_dev_path', 'camera_stable_id', 'camera_name', 'display_name', 'camera_backend', 'camera_type', 'camera_index', 'device_id'],
    ...HOST_IGNORED_ASSIGN_KEYS,
  ].map((k) => [k, true]),
);

/*
 * Every payload below is strict (z.strictObject): an unknown or misspelt key (`lable`, `sesion_id`) is refused as
 * invalid_payload naming it, and nothing changes. Keys only a host sends and the box does not use are named in the
 * schema that accepts them (assign_device's host fields above); the host's framing keys (`timestamp`, `command_id`)
 * are taken off by module mode (module-mode.ts HOST_FRAMING_KEYS) before a payload gets here.
 */
export const cameraTargetSchema = z.strictObject({ camera_id: z.union([cameraRef, cameraIdObject]).optional(), camera_stable_id: z.string().max(200).optional() });

export const startRecordingSchema = z.strictObject({
  session_prefix: sessionName.optional(),
  session: sessionName.optional(),
  trial_number: z.number().int().min(1).max(999_999).optional(),
  trial: z.number().int().min(1).max(999_999).optional(),
  trial_label: label.optional(),
  label: label.optional(),
  /** Seed: where files go. Must name a folder inside the recordings root (a session folder). */
  output_dir: z.string().max(300).optional(),
  /** Module host: absolute session directory; must lie inside the recordings root. */
  session_dir: z.string().max(300).optional(),
  camera_ids: z.array(cameraRef).max(16).optional(),
  metadata: metadata.optional(),
});

export const emptySchema = z.strictObject({});

/**
 * Stop and pause: optionally the instant they take effect, on CLOCK_MONOTONIC µs (a client that stamped its own
 * event). Default: the trigger time (GPIO edge, first byte of the serial line, arrival of the HTTP request).
 */
export const instantSchema = z.strictObject({ at_mono_us: z.number().int().positive().max(Number.MAX_SAFE_INTEGER).optional() });

export const startSessionSchema = z.strictObject({
  session_prefix: sessionName.optional(),
  session_id: sessionName.optional(),
  name: sessionName.optional(),
  session_dir: z.string().max(300).optional(),
  subject: z.string().max(200).optional(),
  experimenter: z.string().max(200).optional(),
  notes: z.string().max(5000).optional(),
  metadata: metadata.optional(),
});

/** A frame size as the seed sends it: "640x480" or {width, height}. */
const resolution = z.union([
  z
    .string()
    .regex(/^\d{2,5}x\d{2,5}$/, 'a size "WxH" like "640x480"')
    .transform((v) => {
      const [w, h] = v.split('x').map(Number);
      return { width: w!, height: h! };
    }),
  z.strictObject({ width: z.number().int(), height: z.number().int() }),
]);
const controlValue = z.union([z.number(), z.boolean(), z.string().max(64)]);

/**
 * `apply_config`: rigcam's own keys and the seed's (`record_resolution`, `record_fps`, `preview_*`, `controls`,
 * `overlay`, `record_audio`; strings accepted where the seed's settings window sends strings). Strict: an unknown
 * key is refused naming it, and nothing changes.
 */
export const applyConfigSchema = z.strictObject({
  camera_id: cameraRef.optional(),
  width: z.number().int().min(16).max(8192).optional(),
  height: z.number().int().min(16).max(8192).optional(),
  fps: z.number().positive().max(1000).optional(),
  input_format: z.string().regex(/^[a-z0-9_]+$/).optional(),
  encoder: z.enum(['auto', 'copy', 'h264_v4l2m2m', 'libx264']).optional(),
  gop_seconds: z.number().positive().max(10).optional(),
  bitrate_kbps: z.number().int().min(100).max(100_000).optional(),
  armed: z.boolean().optional(),
  /** Seed-style nested settings are accepted too. */
  record: z.strictObject({ width: z.number().int(), height: z.number().int(), fps: z.number().positive() }).partial().optional(),
  record_resolution: resolution.optional(),
  record_fps: numberish.pipe(z.number().positive().max(1000)).optional(),
  /** rigcam has no separate preview stream (the preview decodes the recorded stream): accepted, stated as not applied. */
  preview_resolution: resolution.optional(),
  preview_fps: numberish.pipe(z.number().positive().max(1000)).optional(),
  /** Not applicable to rigcam (no overlay burnt into the video, no audio): accepted, stated as not applied. */
  overlay: boolish.optional(),
  record_audio: boolish.optional(),
  /** Camera controls by name (V4L2), each applied like a control_change. */
  controls: z
    .record(z.string().regex(/^[A-Za-z0-9_]{1,64}$/, 'control names are letters, digits and _'), controlValue)
    .refine((c) => Object.keys(c).length <= 64, 'at most 64 controls')
    .optional(),
});

export const controlChangeSchema = z.strictObject({
  camera_id: cameraRef.optional(),
  control: z.string().regex(/^[A-Za-z0-9_]{1,64}$/, 'control names are letters, digits and _'),
  value: z.union([z.number(), z.boolean(), z.string().max(64)]),
  /** false: applied now but not remembered in the box's control state (gone at the next source start). */
  persist: z.boolean().default(true),
});

export const markSchema = z.strictObject({ label: label.min(1, 'a marker needs a label') });
