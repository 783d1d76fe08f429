import path from 'node:path';
import { z } from 'zod';
import type { Config } from '../config/schema.ts';
import { monoNowUs } from '../clock.ts';

/**
 * The flags RPi_Logger's host gives every module process (`rpi_logger/cli/common.py` L26-166, `module_process.py`
 * L89-138: hw-fixtures/rpi-logger/launch.json), as commander hands them over (camelCase), validated here. Kept
 * free of the runtime's imports: `rigcam module` checks them and says `ready` before loading the rest, because
 * the host gives a module 10 s to say it.
 */
const PY_LEVELS = { critical: 'fatal', error: 'error', warning: 'warn', info: 'info', debug: 'debug' } as const;

export const moduleFlagsSchema = z.strictObject({
  /** The host's output directory: where it creates its session directories. Rigcam's recordings root. */
  outputDir: z.string().min(1).max(300).optional(),
  sessionPrefix: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'letters, digits, ".", "_" or "-", starting with a letter or digit')
    .optional(),
  /** Python's level names (the host's) or pino's. */
  logLevel: z.enum(['critical', 'error', 'warning', 'info', 'debug', 'fatal', 'warn', 'trace']).optional(),
  logFile: z.string().min(1).max(300).optional(),
  /** stdout carries the protocol and logs always go to stderr (or --log-file): both accepted, neither changes that. */
  console: z.boolean().optional(),
  autoStartRecording: z
    .boolean()
    .optional()
    .refine((v) => v !== true, 'rigcam records only on the host\'s "record" command (--auto-start-recording is not supported)'),
  enableCommands: z.boolean().optional(),
  /** No window: accepted and unused. */
  windowGeometry: z
    .string()
    .regex(/^\d{1,5}x\d{1,5}([+-]\d{1,5}){2}$/, 'WxH+X+Y')
    .optional(),
  /** One process per camera: its database lives under data_dir/modules/<instance id>. */
  instanceId: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9:._-]{0,127}$/, '1-128 letters, digits, ":", ".", "_" or "-"')
    .optional(),
  /** The host's per-instance module settings file: accepted; rigcam's settings are its YAML config. */
  configPath: z.string().min(1).max(500).optional(),
  /** The CSI camera this process serves (the host then sends no assign_device): assigned at start as picam:N. */
  cameraIndex: z
    .string()
    .regex(/^\d{1,2}$/, 'a camera index 0-15')
    .transform(Number)
    .pipe(z.number().max(15))
    .optional(),
  platform: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,32}$/)
    .optional(),
  architecture: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,32}$/)
    .optional(),
  isRaspberryPi: z.boolean().optional(),
  /** Issue 15 names `--mode headless` (the host never passes it): the only mode rigcam has. */
  mode: z.enum(['headless']).optional(),
});

export type ModuleFlags = z.infer<typeof moduleFlagsSchema>;

/** pino's level for the host's --log-level. */
export function moduleLogLevel(flags: ModuleFlags, configured: string): string {
  const l = flags.logLevel;
  if (!l) return configured;
  return l in PY_LEVELS ? PY_LEVELS[l as keyof typeof PY_LEVELS] : l;
}

/**
 * The config module mode runs with: --output-dir is the recordings root (refused when the YAML names another one),
 * --session-prefix the default session prefix. Returns the raw object for parseConfig.
 */
export function moduleConfig(config: Config, flags: ModuleFlags): Config {
  let recordingsDir = config.recordings_dir;
  if (flags.outputDir) {
    const out = path.resolve(flags.outputDir);
    if (recordingsDir && path.resolve(recordingsDir) !== out)
      throw new Error(`--output-dir ${out} is not the configured recordings_dir ${path.resolve(recordingsDir)}: rigcam writes only under its recordings root; make them the same`);
    recordingsDir = out;
  }
  return {
    ...config,
    recordings_dir: recordingsDir,
    recording: { ...config.recording, session_prefix: flags.sessionPrefix ?? config.recording.session_prefix },
  };
}

/** This process's database: its own per host instance, so a second module process never reconciles the first one's live recording. */
export function moduleDatabase(dataDir: string, flags: ModuleFlags): string {
  if (!flags.instanceId) return path.resolve(dataDir, 'rigcam.db');
  return path.resolve(dataDir, 'modules', flags.instanceId.replace(/[^A-Za-z0-9._-]/g, '_'), 'rigcam.db');
}

/** The `ready` status line, written before the runtime loads (its data as the box's own `ready`). */
export function readyLine(root: string): string {
  return JSON.stringify({ type: 'status', status: 'ready', timestamp: Date.now() / 1000, mono_us: monoNowUs(), data: { cameras: [], recordings_root: root }, command_id: null }) + '\n';
}
