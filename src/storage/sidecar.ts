import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { replaceFile, replaceFileAsync, syncDir, writeNewFile } from './durable-file.ts';

/**
 * The JSON sidecar of a recording (`<base>.json` beside `<base>.ts` / `<base>.mp4`): everything the database knows
 * about the recording that the video and its CSV do not say, so the files alone rebuild it. Written when the
 * recording starts (created exclusively) and replaced atomically when it stops.
 */
export const sidecarSchema = z.object({
  format: z.literal('rigcam-recording/1'),
  recording: z.object({
    camera_id: z.string().min(1),
    segment: z.number().int().min(0),
    codec: z.string(),
    encoder: z.string(),
    width: z.number().int().min(0),
    height: z.number().int().min(0),
    fps_nominal: z.number().min(0),
    clock: z.string(),
    mono0_us: z.number().int(),
    wall0_us: z.number().int(),
    trigger_source: z.string().nullable(),
    trigger_mono_us: z.number().int().nullable(),
    started_at: z.string(),
  }),
  camera: z.object({
    backend: z.string(),
    /** A CSI sync camera's rpicam-vid --sync state when the file opened (absent: no sync). */
    sync: z
      .object({
        mode: z.enum(['server', 'client']),
        state: z.enum(['starting', 'waiting', 'achieved']),
        difference_us: z.number().int().nullable(),
        achieved_mono_us: z.number().int().nullable(),
      })
      .optional(),
  }),
  session: z.object({ name: z.string().min(1), metadata: z.record(z.string(), z.unknown()) }),
  trial: z.object({
    number: z.number().int().min(0),
    label: z.string(),
    metadata: z.record(z.string(), z.unknown()),
    trigger_source: z.string(),
    trigger_mono_us: z.number().int().nullable(),
  }).nullable(),
  /** The process writing it: a recording whose owner is alive on this boot is not another process's orphan. */
  owner: z.object({ pid: z.number().int(), boot_id: z.string() }),
  state: z.enum(['recording', 'complete', 'interrupted']),
  frames: z.number().int().min(0).nullable(),
  dropped: z.number().int().min(0).nullable(),
  stop_reason: z.string().nullable(),
  stopped_at: z.string().nullable(),
  /**
   * Camera controls: every value the driver held (last read back) when the recording started (V4L2), or the
   * rpicam-vid options its run was started with (CSI: config and remembered control_changes); and each V4L2
   * control_change during it. Absent for cameras without controls (and in sidecars written before rigcam had it).
   */
  controls: z
    .object({
      at_start: z.record(z.string(), z.union([z.number(), z.string()])),
      changes: z.array(z.object({ at: z.string(), mono_us: z.number().int(), control: z.string(), value: z.number(), persisted: z.boolean() })),
    })
    .optional(),
});
export type ControlChangeNote = NonNullable<Sidecar['controls']>['changes'][number];
export type Sidecar = z.infer<typeof sidecarSchema>;

/** The sidecar's path for a video path (either container). */
export function sidecarPathFor(video: string): string {
  return video.replace(/\.(ts|mp4)$/, '') + '.json';
}

let boot: string | null = null;

/** This boot's id (Linux); a pid is only meaningful within one boot. Read once: it cannot change while we run. */
export function bootId(): string {
  if (boot === null) {
    try {
      boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    } catch {
      boot = 'unknown';
    }
  }
  return boot;
}

/**
 * The first version, at start: created exclusively (never over another recording's sidecar), and fsynced with its
 * directory entry, unless `durable` is false: then the caller syncs both before announcing it (a trial start).
 */
export function createSidecar(file: string, s: Sidecar, durable = true): void {
  writeNewFile(file, JSON.stringify(s, null, 2) + '\n', durable);
  if (durable) syncDir(path.dirname(file));
}

/** Replace it atomically: a temporary name, fsync, rename over, fsync of the directory. */
export function replaceSidecar(file: string, s: Sidecar): void {
  replaceFile(file, JSON.stringify(s, null, 2) + '\n');
}

/** replaceSidecar through the threadpool (see replaceFileAsync). */
export async function replaceSidecarAsync(file: string, s: Sidecar): Promise<void> {
  await replaceFileAsync(file, JSON.stringify(s, null, 2) + '\n');
}

/** The sidecar of a video, or null when there is none or it does not parse (then the files alone are used). */
export function readSidecar(video: string): Sidecar | null {
  try {
    const parsed = sidecarSchema.safeParse(JSON.parse(readFileSync(sidecarPathFor(video), 'utf8')));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}
