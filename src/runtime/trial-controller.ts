import { lstatSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import type { z } from 'zod';
import type { Config } from '../config/schema.ts';
import { checkSessionName, insideRoot, makeSessionDir, recordingBaseName } from '../recording/paths.ts';
import type { RecordingSummary } from '../recording/recording-file.ts';
import { SOURCE_RESTARTED } from '../recording/camera-recorder.ts';
import { StartSyncs } from '../recording/start-syncs.ts';
import { stopHoldMs } from '../recording/stop-hold.ts';
import { monoNowUs, refreshPair, startPair, wallMonoPair } from '../clock.ts';
import type { TimeSync } from './time-sync.ts';
import { moduleName } from '../timing/csv-format.ts';
import type { SessionRow, Store, TrialRow } from '../storage/store.ts';
import type { CameraRegistry } from './camera-registry.ts';
import type { ExecContext } from './command-bus.ts';
import type { markSchema, startRecordingSchema, startSessionSchema } from './commands.ts';
import { CommandError } from './errors.ts';
import type { EventBus } from './event-bus.ts';
import type { BoxStatus, StatusDataMap, StoppedRecording, TrialRef } from './status.ts';

export type TrialState = 'idle' | 'recording' | 'paused' | 'stopping';

interface ActiveTrial {
  row: TrialRow;
  session: SessionRow;
  cameras: string[];
  /** Recordings of cameras that left mid-trial (unplugged, unassigned): finalised, part of the trial's outcome. */
  lost: RecordingSummary[];
  state: Exclude<TrialState, 'idle'>;
  stopping: Promise<RecordingSummary[]> | null;
}

export interface TrialControllerOptions {
  config: Config;
  store: Store;
  bus: EventBus;
  cameras: CameraRegistry;
  /** Absolute recordings root. */
  root: string;
  /** Why a start must be refused now (the disk guard), or null. */
  refuseStart: () => Promise<string | null>;
  /** The box's time sync (read through the box's ToolShell: no fork of this process on the trigger path). */
  timeSync: () => Promise<TimeSync>;
}

function defaultSessionName(prefix: string): string {
  const d = new Date();
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${prefix}-${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

function sessionName(name: string): string {
  try {
    return checkSessionName(name);
  } catch (err) {
    throw new CommandError('invalid_payload', (err as Error).message);
  }
}

/**
 * Sessions and trials and the trial's state machine: idle → recording ⇄ paused → stopping → idle. It is only ever
 * called from the command bus, so one transition runs at a time. A trial is all its cameras: each one's recorder
 * starts, pauses, resumes and stops with it.
 */
export class TrialController {
  private session: SessionRow | null = null;
  private trial: ActiveTrial | null = null;
  /** How long the last start waited for its batch of fsyncs (files, directory entries, database rows), µs. */
  lastStartSyncUs: number | null = null;

  constructor(private readonly o: TrialControllerOptions) {
    wallMonoPair(); // the offset startPair() reuses, measured before any trigger waits for it
  }

  get state(): TrialState {
    return this.trial?.state ?? 'idle';
  }
  /** The cameras of the running trial (empty when idle). */
  get trialCameras(): readonly string[] {
    return this.trial?.cameras ?? [];
  }
  /** For the journal: which session and trial an event belongs to. */
  context(): { sessionId: number | null; trialId: number | null } {
    return { sessionId: this.session?.id ?? null, trialId: this.trial?.row.id ?? null };
  }

  private active(): ActiveTrial {
    if (!this.trial || this.trial.state === 'stopping') throw new CommandError('conflict', 'not recording');
    return this.trial;
  }

  private ref(t: ActiveTrial): TrialRef {
    return { session: t.session.name, trial: t.row.number, trial_id: t.row.id };
  }

  /** A session folder given as a path (seed output_dir, host session_dir) must be a folder of the root. */
  sessionFromDir(dir: string): string {
    const abs = path.resolve(this.o.root, dir);
    const rel = path.relative(this.o.root, abs);
    if (!rel || rel.startsWith('..') || path.isAbsolute(rel) || rel.includes(path.sep))
      throw new CommandError('invalid_payload', `"${dir}" is not a session folder directly inside the recordings root ${this.o.root}`);
    return sessionName(rel);
  }

  private openSession(name: string, metadata?: Record<string, unknown>): StatusDataMap['session_started'] {
    if (this.session && this.session.name !== name) this.o.store.closeSession(this.session.id);
    this.session = this.o.store.openSession(name, metadata);
    const data = { session: name, session_id: this.session.id, metadata: JSON.parse(this.session.metadata) as unknown };
    this.o.bus.report('session_started', data);
    return data;
  }

  startSession(p: z.infer<typeof startSessionSchema>): StatusDataMap['session_started'] {
    if (this.trial) throw new CommandError('conflict', 'a trial is recording: stop it before starting another session');
    const name = p.session_prefix ?? p.session_id ?? p.name ?? (p.session_dir ? this.sessionFromDir(p.session_dir) : defaultSessionName(this.o.config.recording.session_prefix));
    const metadata: Record<string, unknown> = { ...(p.metadata ?? {}) };
    for (const k of ['subject', 'experimenter', 'notes'] as const) if (p[k] !== undefined) metadata[k] = p[k];
    return this.openSession(name, metadata);
  }

  async stopSession(ctx: ExecContext): Promise<StatusDataMap['session_stopped']> {
    if (!this.session) throw new CommandError('conflict', 'no session is open');
    const stopped = this.trial ? await this.stopTrial(ctx.triggerMonoUs, 'session stopped') : null;
    const s = this.session;
    this.o.store.closeSession(s.id);
    this.session = null;
    const data = { session: s.name, session_id: s.id, trial_stopped: stopped !== null };
    this.o.bus.report('session_stopped', data);
    return data;
  }

  async start(p: z.infer<typeof startRecordingSchema>, ctx: ExecContext): Promise<StatusDataMap['recording_started']> {
    if (this.trial) throw new CommandError('conflict', `already recording trial ${this.trial.row.number} of ${this.trial.session.name}`);
    const refusal = await this.o.refuseStart();
    if (refusal) throw new CommandError('disk_full', refusal);
    // Everything is checked before anything is created.
    const dirName = p.session_dir ?? p.output_dir;
    const name = sessionName(p.session_prefix ?? p.session ?? (dirName ? this.sessionFromDir(dirName) : undefined) ?? this.session?.name ?? defaultSessionName(this.o.config.recording.session_prefix));
    const cams = this.o.cameras.forTrial(p.camera_ids);
    const existingSession = this.o.store.sessionByName(name);
    const explicit = p.trial_number ?? p.trial;
    const refuse = (err: unknown): CommandError => new CommandError('conflict', `cannot record in session ${name}: ${(err as Error).message}`);
    let folder: string;
    try {
      // A session folder that is a symlink leading out of the root: refused before anything is created. Checked
      // once; the files in it are plain names, created exclusively (never through an existing entry: see `taken`).
      folder = insideRoot(this.o.root, name);
    } catch (err) {
      throw refuse(err);
    }
    const filesOf = (n: number): string[] =>
      cams.map((rt) => {
        try {
          return path.join(folder, `${recordingBaseName(name, n, rt.id)}.ts`);
        } catch (err) {
          throw refuse(err);
        }
      });
    // lstat, not exists: a dangling symlink at a target path takes it too (it is never written through).
    const taken = (f: string): boolean => ['.ts', '.csv', '.json', '.mp4'].some((ext) => lstatSync(f.replace(/\.ts$/, ext), { throwIfNoEntry: false }) !== undefined);
    let number = explicit ?? (existingSession ? this.o.store.nextTrialNumber(existingSession.id) : 1);
    let files = filesOf(number);
    // A chosen number goes past what is on disk too (files the database lost are adopted at start, but never trust that alone).
    if (explicit === undefined) while (files.some(taken)) files = filesOf(++number);
    if (existingSession && this.o.store.trialExists(existingSession.id, number)) throw new CommandError('conflict', `trial ${number} already exists in session ${name}`);
    // An explicit number is never moved: its files taken are a conflict (the chosen number's were checked above).
    if (explicit !== undefined) for (const f of files) if (taken(f)) throw new CommandError('conflict', `${path.relative(this.o.root, f)} already exists`);

    if (!this.session || this.session.name !== name) this.openSession(name);
    const session = this.session!;
    // The new files, their directory entries and the rows that register them are synced at once, after every camera
    // has made its files and before the start is announced (see StartSyncs).
    const syncs = new StartSyncs();
    makeSessionDir(folder, syncs);
    const label = p.trial_label ?? p.label ?? '';
    // One precise wall↔monotonic pair for the whole trial: its cameras' wall times agree to the µs.
    const pair = startPair();
    // Filled as the start goes: what a failure must undo.
    const made: { trial: ActiveTrial | null } = { trial: null };
    const recordings: StatusDataMap['recording_started']['recordings'] = [];
    try {
      // The trial's rows and its cameras' recording rows in one commit (its fsync is in the batch below).
      this.o.store.batch(() => {
        const row = this.o.store.createTrial({ sessionId: session.id, number, label, triggerSource: ctx.source, triggerMonoUs: ctx.triggerMonoUs, metadata: p.metadata ?? {} });
        const trial: ActiveTrial = { row, session, cameras: [], lost: [], state: 'recording', stopping: null };
        made.trial = trial;
        this.o.store.setTrialClock(row.id, { mono0Us: pair.monoUs, wall0Us: pair.wallUs, uncertaintyUs: pair.uncertaintyUs, triggerClock: this.triggerClock(ctx.source) });
        for (const [i, rt] of cams.entries()) {
          const started = rt.startRecording({
            trialId: row.id,
            // A later segment (after a source restart) checks the folder again: it may have been replaced meanwhile.
            fileFor: (seg) => (seg === 0 ? files[i]! : insideRoot(this.o.root, name, `${recordingBaseName(name, number, rt.id, seg)}.ts`)),
            root: this.o.root,
            csv: { trial: number, module: moduleName(rt.config.source), deviceId: rt.id, label },
            triggerSource: ctx.source,
            triggerMonoUs: ctx.triggerMonoUs,
            prerollUs: this.o.config.recording.preroll_seconds * 1e6,
            pair,
            syncs,
          });
          trial.cameras.push(rt.id);
          recordings.push({ camera_id: rt.id, recording_id: started.recordingId, path: started.path });
        }
      });
      await syncs.run();
      this.lastStartSyncUs = syncs.waitedUs;
    } catch (err) {
      if (!made.trial) throw err; // no trial row: nothing was created
      // A failed start removes what it made: the cameras that did start stop, their files (created exclusively
      // by this start, so never anyone else's) are removed with the trial's rows, and the trial number is free.
      const left = await this.discardFailedStart(made.trial.row.id, made.trial.cameras);
      throw new CommandError('unavailable', `could not start recording: ${(err as Error).message}${left.length ? ` (left on disk: ${left.join(', ')})` : ''}`);
    }
    const trial = made.trial!;
    this.trial = trial;
    this.o.bus.emit('recording', true);
    const data = { ...this.ref(trial), session_id: session.id, label, trigger_source: ctx.source, trigger_mono_us: ctx.triggerMonoUs, recordings };
    this.o.bus.report('recording_started', data);
    syncs.announced(); // the cameras' pre-roll is written now
    // The time sync is read after the start is announced (its tools take tens of ms; a trigger never waits on them).
    void this.o.timeSync().then((ts) => {
      try {
        this.o.store.setTrialClock(trial.row.id, { timeSync: JSON.stringify(ts) });
      } catch {
        // the database closed meanwhile (shutdown): the trial keeps time_sync NULL, read as unknown
      }
    });
    return data;
  }

  /** Undo a start that failed part-way; returns the files it could not remove (named in the refusal). */
  private async discardFailedStart(trialId: number, started: string[]): Promise<string[]> {
    const files: string[] = [];
    for (const id of started) {
      const summaries = await this.o.cameras.get(id)?.abortRecording('start failed', 'interrupted');
      for (const r of summaries ?? []) files.push(r.path, r.csv, r.path.replace(/\.ts$/, '.json'));
    }
    const left: string[] = [];
    for (const rel of files) {
      const abs = path.resolve(this.o.root, rel);
      try {
        if (lstatSync(abs, { throwIfNoEntry: false })?.isFile()) unlinkSync(abs);
      } catch {
        left.push(path.relative(this.o.root, abs));
      }
    }
    try {
      this.o.store.discardTrial(trialId);
    } catch (err) {
      // The row stays, marked, rather than blocking as 'recording'.
      this.o.store.setTrialState(trialId, 'interrupted');
      left.push(`trial row (${(err as Error).message})`);
    }
    return left;
  }

  /**
   * The instant a stop or pause takes effect: the client's `at_mono_us`, or the trigger time. An instant older
   * than the stop hold is refused: frames after it may already be in the file, and nothing is taken back.
   */
  instant(atMonoUs: number | undefined, ctx: ExecContext): number {
    if (atMonoUs === undefined) return ctx.triggerMonoUs;
    const now = monoNowUs();
    if (atMonoUs > now) throw new CommandError('invalid_payload', `at_mono_us ${atMonoUs} is in the future (CLOCK_MONOTONIC now is ${now} µs)`, true, 'at_mono_us');
    const holdMs = stopHoldMs(this.o.config);
    if (now - atMonoUs > holdMs * 1000)
      throw new CommandError('invalid_payload', `at_mono_us ${atMonoUs} is ${Math.round((now - atMonoUs) / 1000)} ms old, more than the stop hold (${holdMs} ms, recording.stop_hold_ms): frames after it may already be written`, true, 'at_mono_us');
    return atMonoUs;
  }

  /** The clock a trigger was stamped on: the kernel's GPIO event time, or rigcam's user-space reading. */
  private triggerClock(source: string): string {
    if (source === 'gpio') return this.o.config.gpio.backend === 'sysfs' ? 'gpio-sysfs-userspace' : 'gpio-kernel';
    return `${source}-arrival`;
  }

  /** Stop the running trial (files finalised), with a reason when rigcam itself stops it. */
  async stop(atUs: number, reason: string | null): Promise<TrialRef & { recordings: StoppedRecording[] }> {
    const t = this.active();
    const summaries = await this.stopTrial(atUs, reason);
    return { ...this.ref(t), recordings: summaries.map((s) => this.stopped(s)) };
  }

  private stopped(s: RecordingSummary): StoppedRecording {
    return {
      recording_id: s.recordingId,
      path: path.relative(this.o.root, s.path),
      frames: s.frames,
      dropped: s.dropped,
      trigger_frame_index: s.triggerFrameIndex,
      duration_s: Math.round(s.durationS * 1000) / 1000,
      state: s.state,
      clock_source: s.clockSource,
      preroll_s: Math.round(s.prerollS * 1000) / 1000,
      late_start_us: s.lateStartUs,
    };
  }

  /** Stop whatever trial is running (shutdown, unassign all); resolves to its recordings, or null when idle. */
  async stopAny(atUs: number, reason: string): Promise<RecordingSummary[] | null> {
    return this.trial ? this.stopTrial(atUs, reason) : null;
  }

  private stopTrial(atUs: number, reason: string | null): Promise<RecordingSummary[]> {
    const t = this.trial!;
    t.state = 'stopping';
    t.stopping ??= (async () => {
      const per = await Promise.all(t.cameras.map(async (id) => (await this.o.cameras.get(id)?.stopRecording(atUs, reason)) ?? []));
      const summaries = [...t.lost, ...per.flat()];
      // A camera whose source restarted left a gap between segments: the trial is not plainly complete.
      let state: 'complete' | 'interrupted' = summaries.some((s) => s.state === 'interrupted' || s.reason === SOURCE_RESTARTED) ? 'interrupted' : 'complete';
      // On disk before recording_stopped says so; the fsync runs on the threadpool, not on the event loop.
      this.o.store.setTrialState(t.row.id, state, false);
      const unsynced = await this.o.store.syncCommitted().then(() => null, (err: NodeJS.ErrnoException) => err.code ?? err.message);
      if (unsynced !== null) {
        state = 'interrupted';
        reason = `trial end not confirmed on disk (${unsynced})${reason ? `; ${reason}` : ''}`;
        try {
          this.o.store.setTrialState(t.row.id, state, false);
        } catch {
          /* a failing disk: the status says it */
        }
      }
      this.trial = null;
      this.o.bus.emit('recording', false);
      const recordings = summaries.map((s) => ({ ...this.stopped(s), camera_id: this.o.store.recording(s.recordingId)?.camera_id, csv: path.relative(this.o.root, s.csv), reason: s.reason }));
      this.o.bus.report('recording_stopped', { ...this.ref(t), state, reason, stop_mono_us: atUs, recordings });
      this.o.bus.emit('trial_stopped', summaries);
      // Off the trigger path: a later turn of the event loop.
      setImmediate(() => refreshPair());
      return summaries;
    })();
    return t.stopping;
  }

  pause(ctx: ExecContext): StatusDataMap['recording_paused'] {
    const t = this.active();
    if (t.state === 'paused') throw new CommandError('conflict', 'already paused');
    for (const id of t.cameras) this.o.cameras.get(id)?.pauseRecording(ctx.triggerMonoUs);
    t.state = 'paused';
    this.o.store.setTrialState(t.row.id, 'paused');
    const data = { ...this.ref(t), pause_mono_us: ctx.triggerMonoUs };
    this.o.bus.report('recording_paused', data);
    return data;
  }

  resume(ctx: ExecContext): StatusDataMap['recording_resumed'] {
    const t = this.active();
    if (t.state !== 'paused') throw new CommandError('conflict', 'not paused');
    for (const id of t.cameras) this.o.cameras.get(id)?.resumeRecording(ctx.triggerMonoUs);
    t.state = 'recording';
    this.o.store.setTrialState(t.row.id, 'recording');
    const data = { ...this.ref(t), resume_mono_us: ctx.triggerMonoUs };
    this.o.bus.report('recording_resumed', data);
    return data;
  }

  mark(p: z.infer<typeof markSchema>, ctx: ExecContext): StatusDataMap['marker'] {
    const t = this.trial;
    const id = this.o.store.addEvent({ kind: 'marker', name: p.label, source: ctx.source, monoUs: ctx.triggerMonoUs, sessionId: this.session?.id ?? null, trialId: t?.row.id ?? null });
    const data = { marker_id: id, label: p.label, mono_us: ctx.triggerMonoUs, source: ctx.source, trial: t?.row.number ?? null, session: this.session?.name ?? null };
    this.o.bus.report('marker', data);
    return data;
  }

  /** A camera leaves the trial (unassigned): alone, the trial stops; otherwise its part is finalised now. */
  async releaseCamera(id: string, atUs: number, reason: string): Promise<void> {
    const t = this.trial;
    if (!t?.cameras.includes(id)) return;
    if (t.cameras.length === 1) {
      await this.stopTrial(atUs, reason);
      return;
    }
    t.lost.push(...((await this.o.cameras.get(id)?.stopRecording(atUs, reason)) ?? []));
    t.cameras = t.cameras.filter((c) => c !== id);
  }

  /**
   * A camera was unplugged: its part of the trial is finalised now, marked interrupted; the trial's only camera
   * takes the trial with it, otherwise the others go on.
   */
  async cameraLost(id: string, reason: string, atUs: number): Promise<RecordingSummary[]> {
    const t = this.trial;
    const rt = this.o.cameras.get(id);
    if (!t || t.state === 'stopping' || !t.cameras.includes(id) || !rt) return [];
    const alone = t.cameras.length === 1;
    if (!alone) t.cameras = t.cameras.filter((c) => c !== id);
    const recordings = await rt.abortRecording(reason, 'interrupted');
    if (!alone) t.lost.push(...recordings);
    if (alone) await this.stopTrial(atUs, reason);
    return recordings;
  }

  /** A camera's recording failed (disk full...): the whole trial stops, since a trial is all its cameras. */
  async recordingFailed(id: string, reason: string, atUs: number): Promise<void> {
    const t = this.trial;
    if (t && t.state !== 'stopping' && t.cameras.includes(id)) await this.stopTrial(atUs, reason);
  }

  status(): Pick<BoxStatus, 'recording' | 'paused' | 'session' | 'trial'> {
    const t = this.trial;
    return {
      recording: t !== null,
      paused: t?.state === 'paused',
      session: this.session ? { id: this.session.id, name: this.session.name } : null,
      trial: t ? { id: t.row.id, number: t.row.number, label: t.row.label, state: t.state, cameras: [...t.cameras], trigger_source: t.row.trigger_source } : null,
    };
  }
}
