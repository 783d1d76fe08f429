import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { FrameTimer, type FrameRow } from '../../src/timing/frame-row.ts';
import { CSV_HEADER, csvLine } from '../../src/timing/csv-format.ts';
import type { Store } from '../../src/storage/store.ts';

export interface SyntheticSpec {
  session: string;
  trial?: number;
  cameraId?: string;
  fps: number;
  /** Frames in the file. */
  frames: number;
  /** Frames captured before the trigger (flagged `preroll`). */
  prerollFrames?: number;
  /** frame index (1-based) → frames lost just before it. */
  drops?: ReadonlyMap<number, number>;
  /** frame index → pause length in µs before it (flagged `resume`: a gap, not a drop). */
  pauses?: ReadonlyMap<number, number>;
  /** Markers at these frame indexes (their capture instant minus `markerLeadUs`, so they land on that frame). */
  markers?: ReadonlyArray<{ label: string; atFrame: number }>;
  markerLeadUs?: number;
  /** Capture time of the first frame, µs on the monotonic clock. */
  startUs?: number;
  /** Write the CSV sidecar (off for very long synthetic recordings that only the database needs). */
  csv?: boolean;
  /** Small deterministic jitter on every interval, µs (must stay well under half a frame period). */
  jitterUs?: number;
}

export interface Synthetic {
  recordingId: number;
  trialId: number;
  sessionId: number;
  triggerUs: number;
  stopUs: number;
  rows: FrameRow[];
  markers: Array<{ label: string; monoUs: number; frame: number }>;
}

/**
 * A finished recording made through the store exactly as the recorder makes one (the project's FrameTimer computes
 * intervals and missing frames), with drops and pauses where the test wants them, its CSV sidecar and a video file
 * whose size is the bytes recorded. For the quality views: the test camera never drops a frame on its own.
 */
export function makeSyntheticRecording(store: Store, root: string, s: SyntheticSpec): Synthetic {
  const cam = s.cameraId ?? 'cam0';
  const periodUs = 1e6 / s.fps;
  const startUs = s.startUs ?? 5_000_000_000;
  const preroll = s.prerollFrames ?? 0;
  const session = store.openSession(s.session);
  const number = s.trial ?? store.nextTrialNumber(session.id);
  const base = `${s.session}_trial${String(number).padStart(3, '0')}_${cam}`;
  const rel = path.join(s.session, `${base}.ts`);
  const relCsv = path.join(s.session, `${base}.csv`);

  // Capture times first: the trigger sits between the last pre-roll frame and the next.
  const caps: number[] = [];
  let t = startUs;
  for (let i = 1; i <= s.frames; i++) {
    if (i > 1) {
      t += periodUs * (1 + (s.drops?.get(i) ?? 0)) + (s.pauses?.get(i) ?? 0);
      if (s.jitterUs) t += ((i * 7919) % (2 * s.jitterUs + 1)) - s.jitterUs;
    }
    caps.push(Math.round(t));
  }
  const triggerUs = preroll ? caps[preroll]! - Math.round(periodUs / 2) : caps[0]!;
  const stopUs = caps[caps.length - 1]! + Math.round(periodUs / 2);
  const trial = store.createTrial({ sessionId: session.id, number, label: 'synthetic', triggerSource: 'http', triggerMonoUs: triggerUs });
  const id = store.createRecording({
    trialId: trial.id, cameraId: cam, segment: 0, path: rel, csvPath: relCsv, codec: 'h264', encoder: 'libx264', width: 320, height: 240,
    fpsNominal: s.fps, clock: 'monotonic', mono0Us: startUs, wall0Us: 1_700_000_000_000_000, triggerSource: 'http', triggerMonoUs: triggerUs,
  });
  const timer = new FrameTimer(id, s.fps, startUs, 1_700_000_000_000_000);
  const rows: FrameRow[] = caps.map((captureUs, k) => {
    const i = k + 1;
    const flags = [...(i <= preroll ? ['preroll'] : []), ...(s.pauses?.has(i) ? ['resume'] : [])];
    return timer.next({ captureUs, pts: Math.round((captureUs - startUs) * 0.09), keyframe: k % Math.round(s.fps) === 0, bytes: 1000 + (k % 17), flags, expectedGap: s.pauses?.has(i) ?? false });
  });
  for (let k = 0; k < rows.length; k += 20_000) store.insertFrames(rows.slice(k, k + 20_000));
  if (preroll) store.setTriggerFrame(id, preroll + 1);

  mkdirSync(path.join(root, s.session), { recursive: true });
  const video = Buffer.alloc(188 * 10, 0x47);
  writeFileSync(path.join(root, rel), video, { flag: 'wx' });
  if (s.csv !== false) {
    const ctx = { trial: number, module: 'TestCameras', deviceId: cam, label: 'synthetic' };
    writeFileSync(path.join(root, relCsv), [CSV_HEADER, ...rows.map((r) => csvLine(ctx, r))].join('\n') + '\n', { flag: 'wx' });
  } else writeFileSync(path.join(root, relCsv), CSV_HEADER + '\n', { flag: 'wx' });

  const markers = (s.markers ?? []).map((m) => ({ label: m.label, monoUs: caps[m.atFrame - 1]! - (s.markerLeadUs ?? 1000), frame: m.atFrame }));
  for (const m of markers) store.addEvent({ kind: 'marker', name: m.label, source: 'http', sessionId: session.id, trialId: trial.id, monoUs: m.monoUs });
  store.finishRecording(id, { state: 'complete', frames: timer.frames, dropped: timer.droppedFrames, bytes: video.length, reason: null });
  store.setTrialState(trial.id, 'complete');
  store.addEvent({ kind: 'status', name: 'recording_stopped', sessionId: session.id, trialId: null, monoUs: stopUs, payload: { trial_id: trial.id, stop_mono_us: stopUs } });
  return { recordingId: id, trialId: trial.id, sessionId: session.id, triggerUs, stopUs, rows, markers };
}
