import { monoNowUs } from '../../src/clock.ts';
import { silentLogger } from '../../src/log/logger.ts';
import type { CameraPipeline } from '../../src/pipeline/camera-pipeline.ts';
import { CameraRecorder } from '../../src/recording/camera-recorder.ts';
import type { StartSyncs } from '../../src/recording/start-syncs.ts';
import { insideRoot, recordingBaseName, sessionDir } from '../../src/recording/paths.ts';
import type { Store } from '../../src/storage/store.ts';
import { moduleName } from '../../src/timing/csv-format.ts';

/**
 * Trial 1 of a new session recorded by the real CameraRecorder on a running pipeline, triggered now: what the box
 * does for a start, without the box (tests of the pipeline and recorder with a particular source).
 */
export function startTrialRecording(o: {
  pipeline: CameraPipeline;
  store: Store;
  root: string;
  session: string;
  cameraId: string;
  source: Parameters<typeof moduleName>[0];
  prerollUs: number;
  /** The start's batch of fsyncs, as the trial controller passes it (the caller runs it and announces). */
  syncs?: StartSyncs;
}): { recorder: CameraRecorder; triggerMonoUs: number } {
  const { pipeline, store, root, session, cameraId } = o;
  const sess = store.openSession(session);
  sessionDir(root, session);
  const triggerMonoUs = monoNowUs();
  const trial = store.createTrial({ sessionId: sess.id, number: 1, label: '', triggerSource: 'test', triggerMonoUs });
  const recorder = new CameraRecorder(pipeline, { store, log: silentLogger(), fsyncIntervalMs: 1000, stopWaitMs: 2000 });
  recorder.start({
    trialId: trial.id,
    fileFor: (seg) => insideRoot(root, session, `${recordingBaseName(session, 1, cameraId, seg)}.ts`),
    root,
    csv: { trial: 1, module: moduleName(o.source), deviceId: cameraId, label: '' },
    triggerSource: 'test',
    triggerMonoUs,
    prerollUs: o.prerollUs,
    syncs: o.syncs,
  });
  return { recorder, triggerMonoUs };
}
