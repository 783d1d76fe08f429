import { z } from 'zod';

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
const label = z.string().max(200).regex(/^[^\u0000-\u001f\u007f]*$/, 'no control characters');
const metadata = z.record(z.string().max(64), z.union([z.string().max(2000), z.number(), z.boolean(), z.null()])).refine((m) => Object.keys(m).length <= 50, 'at most 50 metadata keys');

const cameraIdObject = z.object({ backend: z.string().max(32), stable_id: z.string().min(1).max(200) });

export const assignDeviceSchema = z.object({
  camera_id: z.union([cameraRef, cameraIdObject]).optional(),
  descriptor: z
    .object({
      name: z.string().max(100).optional(),
      device_path: z.string().max(300).optional(),
      usb_path: z.string().max(300).nullable().optional(),
    })
    .optional(),
  // flat (module host) form
  camera_dev_path: z.string().max(300).optional(),
  camera_stable_id: z.string().max(200).optional(),
  camera_name: z.string().max(100).optional(),
  camera_backend: z.string().max(32).optional(),
});

export const cameraTargetSchema = z.object({ camera_id: z.union([cameraRef, cameraIdObject]).optional(), camera_stable_id: z.string().max(200).optional() });

export const startRecordingSchema = z.object({
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

export const emptySchema = z.object({}).passthrough();

/**
 * Stop and pause: optionally the instant they take effect, on CLOCK_MONOTONIC µs (a client that stamped its own
 * event). Default: the trigger time (GPIO edge, first byte of the serial line, arrival of the HTTP request).
 */
export const instantSchema = z
  .object({ at_mono_us: z.number().int().positive().max(Number.MAX_SAFE_INTEGER).optional() })
  .passthrough();

export const startSessionSchema = z.object({
  session_prefix: sessionName.optional(),
  session_id: sessionName.optional(),
  name: sessionName.optional(),
  session_dir: z.string().max(300).optional(),
  subject: z.string().max(200).optional(),
  experimenter: z.string().max(200).optional(),
  notes: z.string().max(5000).optional(),
  metadata: metadata.optional(),
});

export const applyConfigSchema = z.object({
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
  record: z.object({ width: z.number().int(), height: z.number().int(), fps: z.number().positive() }).partial().optional(),
});

export const controlChangeSchema = z.object({
  camera_id: cameraRef.optional(),
  control: z.string().regex(/^[A-Za-z0-9_]{1,64}$/, 'control names are letters, digits and _'),
  value: z.union([z.number(), z.boolean(), z.string().max(64)]),
});

export const markSchema = z.object({ label: label.min(1, 'a marker needs a label') });
