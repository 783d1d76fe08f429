import type { StoppedRecording } from '../runtime/status.ts';
import path from 'node:path';
import { z } from 'zod';
import { cameraSchema, type Config } from '../config/schema.ts';
import { parseConfig, recordingsRoot } from '../config/load.ts';
import { silentLogger, type Logger } from '../log/logger.ts';
import { checkSessionName } from '../recording/paths.ts';
import { monoNowUs } from '../clock.ts';
import { makeSourceSpec } from '../sources/make-spec.ts';
import { BoxRuntime } from '../runtime/box-runtime.ts';
import { openBoxStore } from './open-box-store.ts';
import { lockDataDir } from '../storage/data-lock.ts';
import { syncChecksums } from '../storage/checksums.ts';

export const recordArgsSchema = z.strictObject({
  source: z.enum(['test', 'v4l2', 'rpicam']),
  device: z.string().optional(),
  duration: z.number({ error: 'duration must be a number of seconds' }).positive('duration must be more than 0 seconds').max(24 * 3600),
  session: z.string().optional(),
  size: z
    .string()
    .regex(/^\d{2,5}x\d{2,5}$/, 'size must look like 1280x720')
    .optional(),
  fps: z.number().positive().max(1000).optional(),
  data: z.string().optional(),
  mp4: z.boolean().optional(),
});

export type RecordArgs = z.infer<typeof recordArgsSchema>;

export interface RecordResult {
  recording_id: number;
  path: string;
  csv: string;
  db: string;
  frames: number;
  dropped: number;
  duration_s: number;
  trigger_frame_index: number | null;
  /** Where the capture times come from (v4l2-monotonic, rpicam-sensor, rpicam-wallclock, synthetic). */
  clock_source: string | null;
  /** Video obtained before the trigger, seconds (the configured recording.preroll_seconds, when the camera had it). */
  preroll_s: number;
  mp4?: string | null;
}

/**
 * Wait until the camera's ring holds `prerollUs` of video before now (a freshly started camera has less), at most
 * that long plus 5 s: `record` starts right after the camera does, and would otherwise get almost no pre-roll.
 */
async function waitForPreroll(ring: { fromKeyframeAtOrBefore(atUs: number): Array<{ captureUs: number }> }, prerollUs: number): Promise<void> {
  if (prerollUs <= 0) return;
  const deadline = monoNowUs() + prerollUs + 5e6;
  while (monoNowUs() < deadline) {
    const target = monoNowUs() - prerollUs;
    const first = ring.fromKeyframeAtOrBefore(target)[0];
    if (first && first.captureUs <= target) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

function defaultSessionName(): string {
  const d = new Date();
  const p = (n: number): string => String(n).padStart(2, '0');
  return `rec-${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

/**
 * `rigcam record`: one trial on one camera, without the daemon: the same box runtime as `rigcam serve` with one
 * camera, driven through handleCommand. Everything is validated before anything is created, so a bad argument
 * leaves no half-written session behind.
 */
export async function runRecord(args: RecordArgs, config: Config, log: Logger = silentLogger()): Promise<RecordResult> {
  const session = checkSessionName(args.session ?? defaultSessionName());
  const [w, h] = args.size ? args.size.split('x').map(Number) : [undefined, undefined];
  const cam = cameraSchema.parse({
    id: 'cam0',
    source: args.source,
    device: args.device,
    ...(w ? { width: w, height: h } : {}),
    ...(args.fps ? { fps: args.fps } : {}),
  });
  makeSourceSpec(cam); // throws on a bad camera before anything is written
  const cfg = parseConfig({
    ...config,
    cameras: [cam],
    // --mp4 is the box's own remux (one per recording, waited for by the shutdown), not a second one here.
    recording: { ...config.recording, remux_mp4: args.mp4 ?? config.recording.remux_mp4 },
    ...(args.data ? { data_dir: args.data, recordings_dir: path.join(args.data, 'recordings') } : {}),
  });
  const root = recordingsRoot(cfg);
  const dbFile = path.resolve(cfg.data_dir, 'rigcam.db');
  const lock = lockDataDir(cfg.data_dir);
  const { store, pending, reserve } = await openBoxStore(cfg, dbFile, root, log);
  const box = new BoxRuntime({ config: cfg, store, log, root, reserve, pendingRecovery: pending ? () => pending().then(() => undefined) : undefined });
  // A camera lost during the recording ends the wait early; its file is already finalised by the box.
  const failed = new Promise<void>((resolve) =>
    box.on('status', (m) => {
      if (m.status === 'device_error' && m.data.unplugged) resolve();
    }),
  );
  try {
    await box.initialize();
    const camera = box.cameras.get(cam.id)!;
    if (camera.state !== 'ready') throw new Error(`camera source failed: ${camera.lastError ?? camera.state}`);
    const source = camera.frameSource();
    if (source) await waitForPreroll(source.ring, cfg.recording.preroll_seconds * 1e6);
    const trigger = monoNowUs();
    const start = await box.handleCommand('start_recording', { session_prefix: session }, { source: 'cli', triggerMonoUs: trigger });
    if (!start.ok) throw new Error(start.error);
    await Promise.race([failed, new Promise((r) => setTimeout(r, args.duration * 1000))]);
    const stop = await box.handleCommand('stop_recording', {}, { source: 'cli', triggerMonoUs: trigger + args.duration * 1e6 });
    if (!stop.ok) throw new Error(stop.error);
    const recs = stop.data!.recordings as StoppedRecording[];
    const last = recs[recs.length - 1]!;
    const abs = path.join(root, last.path);
    const result: RecordResult = {
      recording_id: last.recording_id,
      path: abs,
      csv: abs.replace(/\.ts$/, '.csv'),
      db: dbFile,
      frames: recs.reduce((n, x) => n + x.frames, 0),
      dropped: recs.reduce((n, x) => n + x.dropped, 0),
      duration_s: recs.reduce((n, x) => n + x.duration_s, 0),
      trigger_frame_index: recs[0]!.trigger_frame_index,
      clock_source: recs[0]!.clock_source,
      preroll_s: recs[0]!.preroll_s,
    };
    await box.shutdown(); // waits for the remux
    if (cfg.recording.remux_mp4) {
      const mp4 = store.recording(last.recording_id)?.mp4_path ?? null;
      result.mp4 = mp4 && path.join(root, mp4);
    }
    // A shutdown leaves hashing to the next start; a one-off recording has none, so its files are hashed here.
    for (const r of recs) await syncChecksums(store, root, r.recording_id);
    return result;
  } finally {
    await box.shutdown();
    store.close();
    lock.release();
  }
}
