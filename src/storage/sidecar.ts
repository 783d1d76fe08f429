import { closeSync, fsync, fsyncSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { z } from 'zod';

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

/** fsync a directory so the entries just created or renamed in it survive a power cut. */
export function syncDir(dir: string): void {
  let fd: number | null = null;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    /* some filesystems refuse fsync on directories; the data itself is still synced */
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

const fsyncAsync = promisify(fsync);

/**
 * fsync a file or directory through the threadpool in one round trip. Opening an existing path and closing it are
 * µs on the event loop; only the fsync waits for the disk. (open, fsync and close each through the threadpool were
 * three hand-offs, each also waiting for a turn of the event loop: on a trial start's path, issue 17.)
 */
export async function fsyncPath(p: string): Promise<void> {
  const fd = openSync(p, 'r');
  try {
    await fsyncAsync(fd);
  } finally {
    closeSync(fd);
  }
}

function writeWhole(file: string, text: string, sync = true): void {
  const fd = openSync(file, 'wx', 0o644);
  try {
    writeSync(fd, text);
    if (sync) fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * The first version, at start: created exclusively (never over another recording's sidecar), and fsynced with its
 * directory entry, unless `durable` is false: then the caller syncs both before announcing it (a trial start).
 */
export function createSidecar(file: string, s: Sidecar, durable = true): void {
  writeWhole(file, JSON.stringify(s, null, 2) + '\n', durable);
  if (durable) syncDir(path.dirname(file));
}

/** Replace it atomically: a temporary name, fsync, rename over, fsync of the directory. */
export function replaceSidecar(file: string, s: Sidecar): void {
  replaceFile(file, JSON.stringify(s, null, 2) + '\n');
}

/** Replace a small file atomically and durably: a temporary name created exclusively, fsync, rename, directory fsync. */
export function replaceFile(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    unlinkSync(tmp); // left by an earlier crash of a process with this pid
  } catch {
    /* none */
  }
  try {
    writeWhole(tmp, text);
    renameSync(tmp, file);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      /* never created */
    }
    throw err;
  }
  syncDir(path.dirname(file));
}

/**
 * replaceFile through the threadpool: the same steps (exclusive temporary file, fsync, rename, directory fsync)
 * without holding the event loop for the fsyncs, which take 1–15 ms each here and more on an SD card. For writes
 * made while triggers may arrive (a trigger's arrival is stamped on the loop): the sidecar at a stop, session.json.
 */
export async function replaceFileAsync(file: string, content: string | Iterable<string>): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  await unlink(tmp).catch(() => undefined); // left by an earlier crash of a process with this pid
  try {
    const fh = await open(tmp, 'wx', 0o644);
    try {
      if (typeof content === 'string') await fh.writeFile(content);
      else await writeParts(fh, content);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fsyncPath(path.dirname(file)).catch(() => undefined); // some filesystems refuse fsync on directories
}

/**
 * A document made part by part (a generator doing a little work per part): each part is made in its own turn of the
 * event loop, and the text goes out in writes of about 64 KiB, so the whole is never held at once.
 */
async function writeParts(fh: FileHandle, parts: Iterable<string>): Promise<void> {
  let pending = '';
  const flush = async (): Promise<void> => {
    const b = Buffer.from(pending);
    pending = '';
    for (let off = 0; off < b.length; ) off += (await fh.write(b, off, b.length - off)).bytesWritten;
  };
  for (const part of parts) {
    pending += part;
    if (pending.length >= 65536) await flush();
    else await new Promise((r) => setImmediate(r));
  }
  if (pending) await flush();
}

/** replaceSidecar through the threadpool (see replaceFileAsync). */
export function replaceSidecarAsync(file: string, s: Sidecar): Promise<void> {
  return replaceFileAsync(file, JSON.stringify(s, null, 2) + '\n');
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
