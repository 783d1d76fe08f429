import path from 'node:path';
import { z } from 'zod';
import { gpioConfigSchema } from '../triggers/gpio/gpio-config.ts';
import { serialConfigSchema } from '../triggers/serial/serial-config.ts';
import { diskConfigSchema } from '../disk/thresholds.ts';
import { hwTriggerSchema, rpicamControlsSchema } from '../sources/rpicam-controls.ts';
import { offloadConfigSchema } from '../offload/config.ts';

/**
 * The one configuration file (YAML). Every key has a default, so an empty file is valid and runs one
 * `test` camera. Objects are strict: a misspelt key is an error naming its path, not silently ignored.
 */

const cameraId = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$/, 'camera id: 1-32 letters, digits, "-" or "_", starting with a letter or digit');

/**
 * A directory rigcam writes into: never the root file system itself nor a kernel pseudo file system, where a
 * write would fail later (or worse, do something) far from the config key that caused it.
 */
const FORBIDDEN_DIRS = ['/proc', '/sys', '/dev'];
const writableDir = z
  .string()
  .min(1)
  .refine((d) => path.resolve(d) !== '/', 'must not be the root directory "/"')
  .refine(
    (d) => !FORBIDDEN_DIRS.some((f) => path.resolve(d) === f || path.resolve(d).startsWith(`${f}/`)),
    `must not be under ${FORBIDDEN_DIRS.join(', ')}`,
  );

/** The charset first boot and the image builder accept: what fits in an HTTP header unquoted. */
const TOKEN_RE = /^[A-Za-z0-9._~+/=-]{16,256}$/;

const size = { width: z.number().int().min(16).max(8192), height: z.number().int().min(16).max(8192) };

export const cameraSchema = z.strictObject({
  id: cameraId,
  name: z.string().max(100).optional(),
  source: z.enum(['test', 'v4l2', 'rpicam']).default('test'),
  /** v4l2: the device node (prefer /dev/v4l/by-id/...); rpicam: the camera index as a string or number. */
  device: z.union([z.string().min(1), z.number().int().min(0)]).optional(),
  /** v4l2 input pixel format as ffmpeg names it (mjpeg, h264, yuyv422, ...). */
  input_format: z.string().regex(/^[a-z0-9_]+$/).optional(),
  width: size.width.default(1280),
  height: size.height.default(720),
  fps: z.number().positive().max(1000).default(30),
  encoder: z.enum(['auto', 'copy', 'h264_v4l2m2m', 'libx264']).default('auto'),
  /** Keyframe interval: a recording starts on a keyframe, so this bounds the pre-trigger slack. */
  gop_seconds: z.number().positive().max(10).default(1),
  bitrate_kbps: z.number().int().min(100).max(100_000).default(4000),
  /** Armed cameras record when a trial starts. */
  armed: z.boolean().default(true),
  /** CSI (source rpicam) only: image controls passed to rpicam-vid (shutter, gain, white balance, denoise, focus). */
  rpicam: rpicamControlsSchema.optional(),
  /**
   * CSI only: rpicam-vid's `--sync` role across boxes (libcamera's software camera sync over the network). The
   * camera records nothing until the sync is achieved; a trial is refused until then.
   */
  sync: z.enum(['off', 'server', 'client']).optional(),
  /** CSI only: frames made by external pulses (GS camera XTR), checked per trial against the pulses on a GPIO sync input. */
  trigger: hwTriggerSchema.optional(),
  /**
   * V4L2 controls applied at every source start (first start, restart, replug) and read back: name → integer,
   * boolean, or menu item by name (`auto_exposure: Manual Mode`). A control_change remembered in
   * <data_dir>/camera-controls.json overrides the value given here.
   */
  controls: z
    .record(z.string().regex(/^[A-Za-z0-9_]{1,64}$/, 'control names are letters, digits and _'), z.union([z.number().int(), z.boolean(), z.string().min(1).max(64)]))
    .refine((c) => Object.keys(c).length <= 64, 'at most 64 controls')
    .optional(),
});

export const configSchema = z.strictObject({
  /** Where the database and service state live. */
  data_dir: writableDir.default('./data'),
  /** The recordings root: nothing is ever written outside it. Default: <data_dir>/recordings. */
  recordings_dir: writableDir.optional(),
  cameras: z
    .array(cameraSchema)
    .default([{ id: 'cam0', source: 'test', width: 1280, height: 720, fps: 30, encoder: 'auto', gop_seconds: 1, bitrate_kbps: 4000, armed: true }])
    .refine((cams) => new Set(cams.map((c) => c.id)).size === cams.length, 'camera ids must be unique')
    .superRefine((cams, ctx) => {
      // rpicam-vid options on a camera that is not run by rpicam-vid would be silently ignored.
      cams.forEach((c, i) => {
        if (c.source === 'rpicam') return;
        if (c.rpicam) ctx.addIssue({ code: 'custom', path: [i, 'rpicam'], message: `camera ${c.id}: "rpicam" controls are for CSI cameras (source rpicam), not source ${c.source}` });
        if (c.sync && c.sync !== 'off') ctx.addIssue({ code: 'custom', path: [i, 'sync'], message: `camera ${c.id}: "sync" is rpicam-vid's --sync, for CSI cameras (source rpicam), not source ${c.source}` });
        if (c.trigger) ctx.addIssue({ code: 'custom', path: [i, 'trigger'], message: `camera ${c.id}: "trigger" (external pulses) is for CSI cameras (source rpicam), not source ${c.source}` });
      });
      cams.forEach((c, i) => {
        // The GS camera guide: a fixed shutter, or the AGC fights the exposure the pulse sets.
        if (c.source === 'rpicam' && c.trigger && !(c.rpicam?.shutter_us && c.rpicam.shutter_us > 0))
          ctx.addIssue({ code: 'custom', path: [i, 'rpicam', 'shutter_us'], message: `camera ${c.id}: trigger external needs a fixed rpicam.shutter_us (the pulse sets the exposure; the AGC must not move it)` });
        if (c.source === 'rpicam' && c.trigger && c.sync && c.sync !== 'off')
          ctx.addIssue({ code: 'custom', path: [i, 'sync'], message: `camera ${c.id}: externally triggered frames cannot also follow rpicam-vid --sync` });
      });
    }),
  recording: z
    .strictObject({
      /** Seconds of video kept before the trigger (whole GOPs from the keyframe at or before). */
      preroll_seconds: z.number().min(0).max(60).default(0),
      /** Memory bound of the pre-roll ring per camera. */
      preroll_max_mb: z.number().positive().max(1024).default(64),
      /** After a clean stop, remux the .ts to .mp4 (stream copy) and verify its frame count. */
      remux_mp4: z.boolean().default(false),
      /** Keep the .ts after a verified remux. */
      keep_ts: z.boolean().default(true),
      /** fdatasync the open files this often, so a power cut loses at most this much. */
      fsync_interval_ms: z.number().int().min(100).max(60_000).default(1000),
      /** How long stop waits for the frames captured before the stop instant to arrive. */
      stop_wait_ms: z.number().int().min(0).max(30_000).default(2000),
      /**
       * How long captured frames are held before they are written, so a stop or pause that is only known after
       * its instant (a GPIO pulse confirmed after min_pulse_ms) still cuts at that instant. Default (null): the
       * longest GPIO input delay (min_pulse_ms + debounce_ms) + 250 ms.
       */
      stop_hold_ms: z.number().int().min(0).max(10_000).nullable().default(null),
      session_prefix: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/).default('session'),
    })
    .prefault({}),
  telemetry: z
    .strictObject({
      emit_interval_ms: z.number().int().min(100).max(60_000).default(1000),
      /** How often `offload_telemetry` (backup health: pending, last success and error, stale) goes out. */
      offload_interval_ms: z.number().int().min(100).max(3_600_000).default(60_000),
    })
    .prefault({}),
  /**
   * The event journal (`events` table) is bounded: events older than max_age_days, and the oldest beyond max_rows,
   * are deleted (at start and hourly) — never those of a trial or session whose recordings are not all offloaded.
   */
  journal: z
    .strictObject({
      max_age_days: z.number().int().min(1).max(3650).default(365),
      max_rows: z.number().int().min(10_000).max(50_000_000).default(1_000_000),
    })
    .prefault({}),
  http: z
    .strictObject({
      host: z.string().min(1).default('127.0.0.1'),
      port: z.number().int().min(0).max(65535).default(8080),
      /** Bearer token for mutating routes, data and preview. Required to listen beyond loopback. */
      token: z
        .string()
        .min(16, 'token: at least 16 characters')
        .regex(TOKEN_RE, 'token: 16-256 of letters, digits and . _ ~ + / = - (no spaces, no other characters)')
        .nullable()
        .default(null),
      /** Event-stream (SSE) clients served at once; past it, 503. */
      max_event_clients: z.number().int().min(1).max(1000).default(32),
      /** An event-stream client that falls this far behind is disconnected (it reconnects by itself when it can). */
      event_backlog_kb: z.number().int().min(16).max(16_384).default(256),
    })
    .prefault({}),
  supervisor: z
    .strictObject({
      restart_initial_ms: z.number().int().min(10).max(60_000).default(500),
      restart_max_ms: z.number().int().min(100).max(600_000).default(30_000),
      /** A source that ran this long is healthy again: back-off resets. */
      healthy_after_ms: z.number().int().min(100).default(10_000),
    })
    .prefault({}),
  /** Free-space guard of the recordings volume and the optional retention of offloaded recordings. */
  disk: diskConfigSchema,
  /** Push offload (target) and the stale-backup warning of either direction (see src/offload). */
  offload: offloadConfigSchema,
  /** GPIO TTL trigger inputs and status outputs (see src/triggers/gpio). Nothing runs when none is configured. */
  gpio: gpioConfigSchema.prefault({}),
  /** Serial-port trigger (see src/triggers/serial). */
  serial: serialConfigSchema.prefault({}),
  log: z.strictObject({ level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info') }).prefault({}),
}).superRefine((cfg, ctx) => {
  // A triggered camera's pulses are counted on a sync input: without one there is nothing to check frames against.
  cfg.cameras.forEach((c, i) => {
    if (c.trigger && !cfg.gpio.inputs.some((inp) => inp.line === c.trigger!.pulse_line && inp.mode === 'sync'))
      ctx.addIssue({ code: 'custom', path: ['cameras', i, 'trigger', 'pulse_line'], message: `camera ${c.id}: trigger.pulse_line ${c.trigger.pulse_line} must be a gpio input of mode sync (wired to the same pulses as the camera's XTR)` });
  });
});

export type Config = z.infer<typeof configSchema>;
export type CameraConfig = z.infer<typeof cameraSchema>;
