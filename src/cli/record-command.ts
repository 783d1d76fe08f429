import path from 'node:path';
import { z } from 'zod';
import { cameraSchema, type Config } from '../config/schema.ts';
import { recordingsRoot } from '../config/load.ts';
import { silentLogger, type Logger } from '../log/logger.ts';
import { CameraPipeline, firstKeyframe } from '../pipeline/camera-pipeline.ts';
import { CameraRecorder } from '../recording/camera-recorder.ts';
import { checkSessionName, insideRoot, recordingBaseName, sessionDir } from '../recording/paths.ts';
import { remuxToMp4 } from '../recording/remux.ts';
import { moduleName } from '../recording/timing-csv.ts';
import { monoNowUs } from '../runtime/command-types.ts';
import { makeSourceSpec } from '../sources/make-spec.ts';
import { openDatabase } from '../storage/database.ts';
import { Store } from '../storage/store.ts';

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
  mp4?: string | null;
}

function defaultSessionName(): string {
  const d = new Date();
  const p = (n: number): string => String(n).padStart(2, '0');
  return `rec-${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

/**
 * `rigcam record`: one trial on one camera, without the daemon. Everything is validated before anything is
 * created, so a bad argument leaves no half-written session behind.
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
  const dataDir = path.resolve(args.data ?? config.data_dir);
  const root = args.data ? path.join(dataDir, 'recordings') : recordingsRoot(config);
  makeSourceSpec(cam); // throws on a bad camera before anything is written

  const dbFile = path.join(dataDir, 'rigcam.db');
  const db = openDatabase(dbFile);
  const store = new Store(db);
  const pipeline = new CameraPipeline(cam.id, () => makeSourceSpec(cam), {
    backoff: { initialMs: config.supervisor.restart_initial_ms, maxMs: config.supervisor.restart_max_ms, healthyAfterMs: config.supervisor.healthy_after_ms },
    ringWindowUs: (config.recording.preroll_seconds + 2 * cam.gop_seconds + 1) * 1e6,
    ringMaxBytes: config.recording.preroll_max_mb * 1024 * 1024,
    log,
  });
  try {
    pipeline.start();
    await firstKeyframe(pipeline, 15_000);
    const sess = store.openSession(session);
    const trialNo = store.nextTrialNumber(sess.id);
    const trigger = monoNowUs();
    const trial = store.createTrial({ sessionId: sess.id, number: trialNo, label: '', triggerSource: 'cli', triggerMonoUs: trigger });
    sessionDir(root, session);
    const recorder = new CameraRecorder(pipeline, { store, log, fsyncIntervalMs: config.recording.fsync_interval_ms, stopWaitMs: config.recording.stop_wait_ms });
    recorder.start({
      trialId: trial.id,
      fileFor: (seg) => insideRoot(root, session, `${recordingBaseName(session, trialNo, cam.id, seg)}.ts`),
      root,
      csv: { trial: trialNo, module: moduleName(cam.source), deviceId: cam.id, label: '' },
      triggerSource: 'cli',
      triggerMonoUs: trigger,
      prerollUs: config.recording.preroll_seconds * 1e6,
    });
    await new Promise((r) => setTimeout(r, args.duration * 1000));
    const summaries = await recorder.stop(trigger + args.duration * 1e6);
    store.setTrialState(trial.id, summaries.some((s) => s.state === 'interrupted') ? 'interrupted' : 'complete');
    const s = summaries[summaries.length - 1]!;
    const result: RecordResult = {
      recording_id: s.recordingId,
      path: s.path,
      csv: s.csv,
      db: dbFile,
      frames: summaries.reduce((n, x) => n + x.frames, 0),
      dropped: summaries.reduce((n, x) => n + x.dropped, 0),
      duration_s: Math.round(s.durationS * 1000) / 1000,
      trigger_frame_index: s.triggerFrameIndex,
    };
    if (args.mp4 ?? config.recording.remux_mp4) {
      const r = await remuxToMp4(s.path, s.frames, { keepTs: config.recording.keep_ts });
      store.setMp4(s.recordingId, r.mp4 ? path.relative(root, r.mp4) : null, !r.tsDeleted);
      result.mp4 = r.mp4;
      if (r.error) log.warn({ err: r.error }, 'remux');
    }
    return result;
  } finally {
    await pipeline.stop();
    db.close();
  }
}

