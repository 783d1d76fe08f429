import { EventEmitter } from 'node:events';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { z } from 'zod';
import type { CameraConfig, Config } from '../config/schema.ts';
import { cameraSchema } from '../config/schema.ts';
import { formatIssues } from '../config/load.ts';
import type { Logger } from '../log/logger.ts';
import { checkSessionName, insideRoot, recordingBaseName, sessionDir } from '../recording/paths.ts';
import type { RecordingSummary } from '../recording/recording-file.ts';
import { remuxToMp4 } from '../recording/remux.ts';
import { moduleName } from '../timing/csv-format.ts';
import type { SessionRow, Store, TrialRow } from '../storage/store.ts';
import { CameraRuntime } from './camera-runtime.ts';
import { monoNowUs } from '../clock.ts';
import type { CommandContext, CommandHandler, CommandResult } from './command-types.ts';
import {
  applyConfigSchema,
  assignDeviceSchema,
  cameraTargetSchema,
  canonicalCommand,
  controlChangeSchema,
  emptySchema,
  isCommand,
  markSchema,
  startRecordingSchema,
  startSessionSchema,
  type CommandName,
} from './commands.ts';
import type { StatusMessage } from './status.ts';
import { DiskGuard, mb, type DiskStatus } from '../disk/disk-guard.ts';
import { applyRetention } from '../disk/retention.ts';
import { thresholdBytes } from '../disk/thresholds.ts';
import { statfs } from 'node:fs/promises';

/** A refusal the caller can fix: reported as an error status, recoverable, nothing changed. */
export class CommandError extends Error {
  constructor(
    message: string,
    readonly recoverable = true,
  ) {
    super(message);
  }
}

interface ActiveTrial {
  row: TrialRow;
  session: SessionRow;
  cameras: string[];
  state: 'recording' | 'paused';
  stopping: Promise<RecordingSummary[]> | null;
}

interface BoxEvents {
  status: [StatusMessage];
}

export interface BoxOptions {
  config: Config;
  store: Store;
  log: Logger;
  /** Absolute recordings root. */
  root: string;
}

function parse<T extends z.ZodType>(schema: T, payload: unknown): z.infer<T> {
  const r = schema.safeParse(payload ?? {});
  if (!r.success) throw new CommandError(`invalid payload: ${formatIssues(r.error.issues).join('; ')}`);
  return r.data;
}

function defaultSessionName(prefix: string): string {
  const d = new Date();
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${prefix}-${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

/** A stable id from a free-form stable id (udev serial, by-path, picam:0): what file names can carry. */
export function cameraIdFromStableId(stable: string): string {
  const slug = stable.replace(/[^A-Za-z0-9_-]+/g, '-').replace(/^[-_]+|[-_]+$/g, '');
  return (slug || 'camera').slice(-32).replace(/^[-_]+/, '') || 'camera';
}

/**
 * The box: one runtime per camera and the trial controller above them, behind the one transport-neutral
 * `handleCommand`. Commands run one at a time in arrival order; each is validated completely before it changes
 * anything, journalled with its source and result, and answered both to its caller and as status events.
 */
export class BoxRuntime extends EventEmitter<BoxEvents> implements CommandHandler {
  readonly cameras = new Map<string, CameraRuntime>();
  private session: SessionRow | null = null;
  private trial: ActiveTrial | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private telemetryTimer: NodeJS.Timeout | null = null;
  private lastFrames = new Map<string, { frames: number; at: number }>();
  private closing = false;
  readonly disk: DiskGuard;

  constructor(readonly o: BoxOptions) {
    super();
    for (const cam of o.config.cameras) this.cameras.set(cam.id, this.newCamera(cam));
    this.disk = new DiskGuard(o.root, o.config.disk, () => this.writeRate());
    this.disk.on('level', (st, prev) => this.onDiskLevel(st, prev));
    this.disk.on('error', (err) => this.o.log.warn({ err: err.message }, 'disk check failed'));
  }

  /** Bytes/s that recording adds to the disk: the recording cameras, or every armed camera when idle (what a start would write). */
  private writeRate(): number {
    const cams = [...this.cameras.values()].filter((c) => c.pipeline && (this.trial ? this.trial.cameras.includes(c.id) : c.cam.armed));
    return cams.reduce((n, c) => n + (c.pipeline?.stats().bytesPerSecond ?? 0), 0);
  }

  private onDiskLevel(st: DiskStatus, prev: string): void {
    this.report('disk', { ...st, previous_level: prev });
    if (st.level === 'warn') this.report('warning', { message: `low disk: ${mb(st.free_bytes)} free (warn_free ${mb(st.warn_free_bytes)})`, disk: st });
    if (st.level === 'stop' && this.trial) {
      const message = `disk almost full: ${mb(st.free_bytes)} free, below stop_free ${mb(st.stop_free_bytes)}: recording stopped, files finalised`;
      this.report('error', { command: null, error: message, message, recoverable: false });
      void this.handleCommand('stop_recording', { reason: 'disk full' }, { source: 'internal' });
    }
    if (this.o.config.disk.retention.enabled && st.level !== 'unknown') void this.retention(st);
  }

  private async retention(st: DiskStatus): Promise<void> {
    const keep = thresholdBytes(this.o.config.disk.retention.keep_free, st.total_bytes);
    if (st.free_bytes >= keep) return;
    const deleted = await applyRetention({
      store: this.o.store,
      root: this.o.root,
      log: this.o.log,
      keepFreeBytes: keep,
      freeBytes: async () => {
        const s = await statfs(this.o.root);
        return s.bavail * s.bsize;
      },
    });
    if (deleted.length) this.report('retention', { deleted_recordings: deleted });
  }

  private newCamera(cam: CameraConfig): CameraRuntime {
    return new CameraRuntime(cam, {
      config: this.o.config,
      store: this.o.store,
      log: this.o.log,
      onSourceExit: (id, e) => {
        this.report('source_exited', { camera_id: id, problem: e.problem, message: e.message, code: e.code, signal: e.signal, restart_in_ms: e.restartInMs }, id);
        if (e.problem === 'missing_device') void this.deviceLost(id, e.message);
      },
      onDeviceBack: (id) => {
        const rt = this.cameras.get(id);
        if (rt) this.report('device_ready', { ...rt.describe(), reassigned: true }, id);
      },
      onSourceStarted: (id, run) => {
        if (run > 1) this.report('source_started', { camera_id: id, run }, id);
      },
    });
  }

  // ---- lifecycle ------------------------------------------------------------------------------------

  /** Report `ready`, then assign every configured camera (in parallel); each reports device_ready or device_error. */
  async initialize(): Promise<void> {
    mkdirSync(this.o.root, { recursive: true });
    this.report('ready', { cameras: [...this.cameras.keys()], recordings_root: this.o.root });
    await this.disk.check();
    this.disk.start();
    await Promise.all([...this.cameras.values()].map((c) => this.assignCamera(c, c.cam).catch(() => undefined)));
    this.telemetryTimer = setInterval(() => this.emitTelemetry(), this.o.config.telemetry.emit_interval_ms);
    this.telemetryTimer.unref();
  }

  /** Stop any trial (files finalised), release every camera. */
  async shutdown(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.telemetryTimer) clearInterval(this.telemetryTimer);
    this.disk.stop();
    await this.queue.catch(() => undefined);
    if (this.trial) await this.stopTrial(monoNowUs(), 'shutdown');
    await Promise.all([...this.cameras.values()].map((c) => c.unassign()));
  }

  // ---- the command entry point ----------------------------------------------------------------------

  handleCommand(command: string, payload: unknown, ctx: CommandContext, commandId?: string | null): Promise<CommandResult> {
    // The trigger instant is taken on arrival, not when the queue reaches the command.
    const at = ctx.triggerMonoUs ?? monoNowUs();
    const run = this.queue.then(() => this.execute(command, payload, { ...ctx, triggerMonoUs: at }, commandId ?? null));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async execute(command: string, payload: unknown, ctx: Required<CommandContext>, commandId: string | null): Promise<CommandResult> {
    const name = canonicalCommand(command);
    let result: CommandResult;
    try {
      if (this.closing) throw new CommandError('the service is shutting down', false);
      if (!isCommand(name)) throw new CommandError(`unknown command: ${command}`);
      const data = await this.dispatch(name, payload, ctx, commandId);
      result = { ok: true, command, data };
    } catch (err) {
      const known = err instanceof CommandError;
      const message = (err as Error).message;
      if (!known) this.o.log.error({ command, err: message }, 'command failed');
      result = { ok: false, command, error: message, recoverable: known ? err.recoverable : true };
      this.report('error', { command, error: message, message, recoverable: result.recoverable }, null, commandId);
    }
    try {
      this.o.store.addEvent({
        kind: 'command',
        name: command,
        source: ctx.source,
        monoUs: ctx.triggerMonoUs,
        sessionId: this.session?.id ?? null,
        trialId: this.trial?.row.id ?? null,
        payload: payload ?? {},
        result,
      });
    } catch (err) {
      this.o.log.error({ err: (err as Error).message }, 'journal write failed');
    }
    return result;
  }

  private async dispatch(name: CommandName, payload: unknown, ctx: Required<CommandContext>, commandId: string | null): Promise<Record<string, unknown>> {
    switch (name) {
      case 'assign_device':
        return this.cmdAssign(parse(assignDeviceSchema, payload), commandId);
      case 'unassign_device':
        return this.cmdUnassign(parse(cameraTargetSchema, payload), ctx);
      case 'unassign_all_devices':
        parse(emptySchema, payload);
        return this.cmdUnassignAll(ctx);
      case 'start_recording':
        return this.cmdStart(parse(startRecordingSchema, payload), ctx);
      case 'stop_recording':
        return this.cmdStop(ctx, parse(emptySchema, payload));
      case 'pause_recording':
        parse(emptySchema, payload);
        return this.cmdPause(ctx);
      case 'resume_recording':
        parse(emptySchema, payload);
        return this.cmdResume(ctx);
      case 'start_session':
        return this.cmdStartSession(parse(startSessionSchema, payload));
      case 'stop_session':
        parse(emptySchema, payload);
        return this.cmdStopSession(ctx);
      case 'apply_config':
        return this.cmdApplyConfig(parse(applyConfigSchema, payload));
      case 'control_change':
        return this.cmdControl(parse(controlChangeSchema, payload));
      case 'reprobe':
        return this.cmdReprobe(parse(cameraTargetSchema, payload));
      case 'get_status':
        parse(emptySchema, payload);
        return this.status();
      case 'mark':
        return this.cmdMark(parse(markSchema, payload), ctx);
    }
  }

  // ---- devices --------------------------------------------------------------------------------------

  private camera(ref: string | { backend: string; stable_id: string } | undefined, stableId?: string): CameraRuntime {
    if (ref === undefined && stableId === undefined) {
      if (this.cameras.size === 1) return [...this.cameras.values()][0]!;
      throw new CommandError(`camera_id is required (cameras: ${[...this.cameras.keys()].join(', ') || 'none'})`);
    }
    const id = typeof ref === 'string' ? ref : cameraIdFromStableId(ref?.stable_id ?? stableId!);
    const cam = this.cameras.get(id);
    if (!cam) throw new CommandError(`no camera "${id}" (cameras: ${[...this.cameras.keys()].join(', ') || 'none'})`);
    return cam;
  }

  private async assignCamera(rt: CameraRuntime, cam: CameraConfig, commandId: string | null = null): Promise<Record<string, unknown>> {
    try {
      const ready = await rt.assign(cam);
      this.report('device_ready', { ...ready }, rt.id, commandId);
      return { ...ready };
    } catch (err) {
      const message = (err as Error).message;
      this.report('device_error', { camera_id: rt.id, error: message, message }, rt.id, commandId);
      throw new CommandError(`camera ${rt.id}: ${message}`);
    }
  }

  private async cmdAssign(p: z.infer<typeof assignDeviceSchema>, commandId: string | null): Promise<Record<string, unknown>> {
    const stable = typeof p.camera_id === 'object' ? p.camera_id.stable_id : p.camera_stable_id;
    const backend = (typeof p.camera_id === 'object' ? p.camera_id.backend : p.camera_backend)?.toLowerCase();
    const devicePath = p.descriptor?.device_path ?? p.camera_dev_path;
    const name = p.descriptor?.name ?? p.camera_name;
    let id: string;
    if (typeof p.camera_id === 'string') id = p.camera_id;
    else if (stable) id = cameraIdFromStableId(stable);
    else if (this.cameras.size === 1 && !devicePath) id = [...this.cameras.keys()][0]!;
    else throw new CommandError('assign_device needs camera_id (a configured camera, or {backend, stable_id})');
    const existing = this.cameras.get(id);
    if (existing?.recording) throw new CommandError(`camera ${id} is recording: stop the trial first`);
    // A device path without a backend is a V4L2 node; the seed's backends map onto source kinds.
    const source =
      backend === undefined
        ? devicePath
          ? 'v4l2'
          : existing?.cam.source ?? 'test'
        : backend === 'test'
          ? 'test'
          : /^(picam|csi|rpicam|libcamera)/.test(backend)
            ? 'rpicam'
            : 'v4l2';
    const parsed = cameraSchema.safeParse({
      ...(existing?.cam ?? {}),
      id,
      source,
      ...(name ? { name } : {}),
      ...(devicePath ? { device: devicePath } : {}),
    });
    if (!parsed.success) throw new CommandError(`invalid device: ${formatIssues(parsed.error.issues).join('; ')}`);
    const rt = existing ?? this.newCamera(parsed.data);
    const data = await this.assignCamera(rt, parsed.data, commandId);
    if (!existing) this.cameras.set(id, rt); // only a camera that works joins the box
    return data;
  }

  private async releaseCamera(rt: CameraRuntime, ctx: Required<CommandContext>): Promise<void> {
    if (this.trial?.cameras.includes(rt.id)) {
      if (this.trial.cameras.length === 1) await this.stopTrial(ctx.triggerMonoUs, 'camera unassigned');
      else {
        await rt.recorder?.stop(ctx.triggerMonoUs, 'camera unassigned');
        this.trial.cameras = this.trial.cameras.filter((c) => c !== rt.id);
      }
    }
    await rt.unassign(3000);
    this.report('device_released', { camera_id: rt.id, device_id: rt.id, port_released: true }, rt.id);
  }

  /**
   * A camera was unplugged: its part of a running trial is finalised now (playable, marked interrupted) while the
   * other cameras go on; the supervisor keeps looking for the device and it rejoins by itself when it comes back.
   */
  private async deviceLost(id: string, message: string): Promise<void> {
    const rt = this.cameras.get(id);
    if (!rt) return;
    const t = this.trial;
    let recordings: RecordingSummary[] = [];
    if (t?.cameras.includes(id) && rt.recorder) {
      if (t.cameras.length > 1) t.cameras = t.cameras.filter((c) => c !== id);
      recordings = await rt.recorder.abort('camera unplugged', 'interrupted');
      if (this.trial === t && t.cameras.length === 1 && t.cameras[0] === id) {
        // It was the trial's only camera: the trial ends with it.
        void this.handleCommand('stop_recording', { reason: 'camera unplugged' }, { source: 'internal' });
      }
    }
    this.report(
      'device_error',
      { camera_id: id, error: message, message, unplugged: true, recordings: recordings.map((r) => ({ recording_id: r.recordingId, path: path.relative(this.o.root, r.path), frames: r.frames, state: r.state })) },
      id,
    );
  }

  private async cmdUnassign(p: z.infer<typeof cameraTargetSchema>, ctx: Required<CommandContext>): Promise<Record<string, unknown>> {
    const rt = this.camera(p.camera_id, p.camera_stable_id);
    await this.releaseCamera(rt, ctx);
    return { camera_id: rt.id, released: true };
  }

  private async cmdUnassignAll(ctx: Required<CommandContext>): Promise<Record<string, unknown>> {
    if (this.trial) await this.stopTrial(ctx.triggerMonoUs, 'all cameras unassigned');
    const released: string[] = [];
    for (const rt of this.cameras.values()) {
      if (rt.state === 'unassigned') continue;
      await this.releaseCamera(rt, ctx);
      released.push(rt.id);
    }
    return { released };
  }

  private async cmdApplyConfig(p: z.infer<typeof applyConfigSchema>): Promise<Record<string, unknown>> {
    const rt = this.camera(p.camera_id);
    if (rt.recording) throw new CommandError(`camera ${rt.id} is recording: apply_config is refused during a trial`);
    const { camera_id: _id, record, ...flat } = p;
    void _id;
    const changes = { ...flat, ...(record ?? {}) };
    const check = cameraSchema.safeParse({ ...rt.cam, ...changes });
    if (!check.success) throw new CommandError(`invalid config: ${formatIssues(check.error.issues).join('; ')}`);
    let res;
    try {
      res = await rt.applyConfig(changes);
    } catch (err) {
      this.report('device_error', { camera_id: rt.id, error: (err as Error).message, message: (err as Error).message }, rt.id);
      throw new CommandError(`camera ${rt.id}: ${(err as Error).message} (previous settings kept)`);
    }
    this.report('config_applied', { ...res.camera, restarted: res.restarted }, rt.id);
    return { camera_id: rt.id, restarted: res.restarted, camera: res.camera };
  }

  private async cmdControl(p: z.infer<typeof controlChangeSchema>): Promise<Record<string, unknown>> {
    const rt = this.camera(p.camera_id);
    let res;
    try {
      res = await rt.controlChange(p.control, p.value);
    } catch (err) {
      throw new CommandError((err as Error).message);
    }
    this.report('control_changed', { camera_id: rt.id, ...res }, rt.id);
    return { camera_id: rt.id, ...res };
  }

  private async cmdReprobe(p: z.infer<typeof cameraTargetSchema>): Promise<Record<string, unknown>> {
    const rt = this.camera(p.camera_id, p.camera_stable_id);
    let caps;
    try {
      caps = await rt.reprobe();
    } catch (err) {
      throw new CommandError(`camera ${rt.id}: ${(err as Error).message}`);
    }
    this.report('capabilities', { camera_id: rt.id, capabilities: caps }, rt.id);
    return { camera_id: rt.id, capabilities: caps };
  }

  // ---- sessions and trials --------------------------------------------------------------------------

  /** A session folder given as a path (seed output_dir, host session_dir) must be a folder of the root. */
  private sessionFromDir(dir: string): string {
    const abs = path.resolve(this.o.root, dir);
    const rel = path.relative(this.o.root, abs);
    if (!rel || rel.startsWith('..') || path.isAbsolute(rel) || rel.includes(path.sep))
      throw new CommandError(`"${dir}" is not a session folder directly inside the recordings root ${this.o.root}`);
    try {
      return checkSessionName(rel);
    } catch (err) {
      throw new CommandError((err as Error).message);
    }
  }

  private cmdStartSession(p: z.infer<typeof startSessionSchema>): Record<string, unknown> {
    if (this.trial) throw new CommandError('a trial is recording: stop it before starting another session');
    const name = p.session_prefix ?? p.session_id ?? p.name ?? (p.session_dir ? this.sessionFromDir(p.session_dir) : defaultSessionName(this.o.config.recording.session_prefix));
    const metadata: Record<string, unknown> = { ...(p.metadata ?? {}) };
    for (const k of ['subject', 'experimenter', 'notes'] as const) if (p[k] !== undefined) metadata[k] = p[k];
    if (this.session && this.session.name !== name) this.o.store.closeSession(this.session.id);
    this.session = this.o.store.openSession(name, metadata);
    const data = { session: name, session_id: this.session.id, metadata: JSON.parse(this.session.metadata) as unknown };
    this.report('session_started', data);
    return data;
  }

  private async cmdStopSession(ctx: Required<CommandContext>): Promise<Record<string, unknown>> {
    if (!this.session) throw new CommandError('no session is open');
    const stopped = this.trial ? await this.stopTrial(ctx.triggerMonoUs, 'session stopped') : null;
    const s = this.session;
    this.o.store.closeSession(s.id);
    this.session = null;
    const data = { session: s.name, session_id: s.id, trial_stopped: stopped !== null };
    this.report('session_stopped', data);
    return data;
  }

  private async cmdStart(p: z.infer<typeof startRecordingSchema>, ctx: Required<CommandContext>): Promise<Record<string, unknown>> {
    if (this.trial) throw new CommandError(`already recording trial ${this.trial.row.number} of ${this.trial.session.name}`);
    const refusal = await this.disk.refuseStart();
    if (refusal) throw new CommandError(refusal);
    // Everything is checked before anything is created.
    const dirName = p.session_dir ?? p.output_dir;
    const name = p.session_prefix ?? p.session ?? (dirName ? this.sessionFromDir(dirName) : undefined) ?? this.session?.name ?? defaultSessionName(this.o.config.recording.session_prefix);
    try {
      checkSessionName(name);
    } catch (err) {
      throw new CommandError((err as Error).message);
    }
    const ids = p.camera_ids ?? [...this.cameras.values()].filter((c) => c.cam.armed && c.state === 'ready').map((c) => c.id);
    if (!ids.length) throw new CommandError('no camera is ready to record');
    const cams = ids.map((id) => {
      const rt = this.camera(id);
      if (rt.state !== 'ready' || !rt.recorder || !rt.pipeline) throw new CommandError(`camera ${id} is not ready (${rt.state}${rt.lastError ? `: ${rt.lastError}` : ''})`);
      return rt;
    });
    const existingSession = this.o.store.sessionByName(name);
    const number = p.trial_number ?? p.trial ?? (existingSession ? this.o.store.nextTrialNumber(existingSession.id) : 1);
    if (existingSession && this.o.store.trialExists(existingSession.id, number))
      throw new CommandError(`trial ${number} already exists in session ${name}`);
    const files = cams.map((rt) => insideRoot(this.o.root, name, `${recordingBaseName(name, number, rt.id)}.ts`));
    for (const f of files) if (existsSync(f) || existsSync(f.replace(/\.ts$/, '.csv'))) throw new CommandError(`${path.relative(this.o.root, f)} already exists`);

    if (!this.session || this.session.name !== name) {
      if (this.session) this.o.store.closeSession(this.session.id);
      this.session = this.o.store.openSession(name);
      this.report('session_started', { session: name, session_id: this.session.id, metadata: JSON.parse(this.session.metadata) as unknown });
    }
    sessionDir(this.o.root, name);
    const label = p.trial_label ?? p.label ?? '';
    const row = this.o.store.createTrial({ sessionId: this.session.id, number, label, triggerSource: ctx.source, triggerMonoUs: ctx.triggerMonoUs, metadata: p.metadata ?? {} });
    const trial: ActiveTrial = { row, session: this.session, cameras: [], state: 'recording', stopping: null };
    const recordings: Array<Record<string, unknown>> = [];
    try {
      for (const rt of cams) {
        const started = rt.recorder!.start({
          trialId: row.id,
          fileFor: (seg) => insideRoot(this.o.root, name, `${recordingBaseName(name, number, rt.id, seg)}.ts`),
          root: this.o.root,
          csv: { trial: number, module: moduleName(rt.cam.source), deviceId: rt.id, label },
          triggerSource: ctx.source,
          triggerMonoUs: ctx.triggerMonoUs,
          prerollUs: this.o.config.recording.preroll_seconds * 1e6,
        });
        trial.cameras.push(rt.id);
        this.watchRecorder(rt);
        recordings.push({ camera_id: rt.id, recording_id: started.recordingId, path: started.path });
      }
    } catch (err) {
      // A camera that could not start must not leave the others recording an orphan trial.
      for (const id of trial.cameras) void this.cameras.get(id)?.recorder?.abort('start failed');
      this.o.store.setTrialState(row.id, 'interrupted');
      throw new CommandError(`could not start recording: ${(err as Error).message}`);
    }
    this.trial = trial;
    this.disk.setRecording(true);
    const data = {
      session: name,
      session_id: this.session.id,
      trial: number,
      trial_id: row.id,
      label,
      trigger_source: ctx.source,
      trigger_mono_us: ctx.triggerMonoUs,
      recordings,
    };
    this.report('recording_started', data);
    return data;
  }

  private watchRecorder(rt: CameraRuntime): void {
    const rec = rt.recorder!;
    rec.removeAllListeners('failed');
    rec.removeAllListeners('segment');
    rec.on('failed', ({ error }) => {
      const message = `camera ${rt.id}: recording stopped: ${(error as NodeJS.ErrnoException).code === 'ENOSPC' ? 'the disk is full' : error.message}`;
      this.report('error', { command: null, error: message, message, recoverable: false, camera_id: rt.id }, rt.id);
      // The other cameras of the trial stop too: a trial is all its cameras.
      if (this.trial?.cameras.includes(rt.id)) void this.handleCommand('stop_recording', { reason: message }, { source: 'internal' });
    });
    rec.on('segment', (s) => {
      this.report('segment_started', { camera_id: rt.id, segment: s.segment, recording_id: s.recordingId, gap_us: s.gapUs }, rt.id);
    });
  }

  private stopTrial(atUs: number, reason: string | null): Promise<RecordingSummary[]> {
    const t = this.trial!;
    t.stopping ??= (async () => {
      const per = await Promise.all(
        t.cameras.map(async (id) => {
          const rt = this.cameras.get(id);
          return (await rt?.recorder?.stop(atUs, reason)) ?? [];
        }),
      );
      const summaries = per.flat();
      const state = summaries.some((s) => s.state === 'interrupted') ? 'interrupted' : 'complete';
      this.o.store.setTrialState(t.row.id, state);
      this.trial = null;
      this.disk.setRecording(false);
      const recordings = summaries.map((s) => ({
        recording_id: s.recordingId,
        camera_id: this.o.store.recording(s.recordingId)?.camera_id,
        path: path.relative(this.o.root, s.path),
        csv: path.relative(this.o.root, s.csv),
        frames: s.frames,
        dropped: s.dropped,
        trigger_frame_index: s.triggerFrameIndex,
        duration_s: Math.round(s.durationS * 1000) / 1000,
        state: s.state,
        reason: s.reason,
      }));
      this.report('recording_stopped', { session: t.session.name, trial: t.row.number, trial_id: t.row.id, state, reason, stop_mono_us: atUs, recordings });
      if (this.o.config.recording.remux_mp4) void this.remuxAll(summaries);
      return summaries;
    })();
    return t.stopping;
  }

  private async remuxAll(summaries: RecordingSummary[]): Promise<void> {
    for (const s of summaries) {
      if (s.state !== 'complete' || !s.frames) continue;
      const r = await remuxToMp4(s.path, s.frames, { keepTs: this.o.config.recording.keep_ts });
      if (r.mp4) this.o.store.setMp4(s.recordingId, path.relative(this.o.root, r.mp4), !r.tsDeleted);
      this.report(r.error ? 'warning' : 'remux_done', { recording_id: s.recordingId, mp4: r.mp4 && path.relative(this.o.root, r.mp4), ts_deleted: r.tsDeleted, error: r.error });
    }
  }

  private async cmdStop(ctx: Required<CommandContext>, p: Record<string, unknown>): Promise<Record<string, unknown>> {
    if (!this.trial) throw new CommandError('not recording');
    const t = this.trial;
    // Only rigcam itself gives a stop a reason (disk full, write failure); a user's stop is a plain stop.
    const reason = ctx.source === 'internal' && typeof p.reason === 'string' ? p.reason : null;
    const summaries = await this.stopTrial(ctx.triggerMonoUs, reason);
    return {
      session: t.session.name,
      trial: t.row.number,
      trial_id: t.row.id,
      recordings: summaries.map((s) => ({
        recording_id: s.recordingId,
        path: path.relative(this.o.root, s.path),
        frames: s.frames,
        dropped: s.dropped,
        trigger_frame_index: s.triggerFrameIndex,
        duration_s: Math.round(s.durationS * 1000) / 1000,
        state: s.state,
      })),
    };
  }

  private cmdPause(ctx: Required<CommandContext>): Record<string, unknown> {
    const t = this.trial;
    if (!t) throw new CommandError('not recording');
    if (t.state === 'paused') throw new CommandError('already paused');
    for (const id of t.cameras) this.cameras.get(id)?.recorder?.pause(ctx.triggerMonoUs);
    t.state = 'paused';
    this.o.store.setTrialState(t.row.id, 'paused');
    const data = { session: t.session.name, trial: t.row.number, trial_id: t.row.id, pause_mono_us: ctx.triggerMonoUs };
    this.report('recording_paused', data);
    return data;
  }

  private cmdResume(ctx: Required<CommandContext>): Record<string, unknown> {
    const t = this.trial;
    if (!t) throw new CommandError('not recording');
    if (t.state !== 'paused') throw new CommandError('not paused');
    for (const id of t.cameras) this.cameras.get(id)?.recorder?.resume(ctx.triggerMonoUs);
    t.state = 'recording';
    this.o.store.setTrialState(t.row.id, 'recording');
    const data = { session: t.session.name, trial: t.row.number, trial_id: t.row.id, resume_mono_us: ctx.triggerMonoUs };
    this.report('recording_resumed', data);
    return data;
  }

  private cmdMark(p: z.infer<typeof markSchema>, ctx: Required<CommandContext>): Record<string, unknown> {
    const t = this.trial;
    const id = this.o.store.addEvent({
      kind: 'marker',
      name: p.label,
      source: ctx.source,
      monoUs: ctx.triggerMonoUs,
      sessionId: this.session?.id ?? null,
      trialId: t?.row.id ?? null,
    });
    const data = { marker_id: id, label: p.label, mono_us: ctx.triggerMonoUs, source: ctx.source, trial: t?.row.number ?? null, session: this.session?.name ?? null };
    this.report('marker', data);
    return data;
  }

  // ---- status and telemetry -------------------------------------------------------------------------

  status(): Record<string, unknown> {
    const t = this.trial;
    return {
      recording: t !== null,
      paused: t?.state === 'paused',
      session: this.session ? { id: this.session.id, name: this.session.name } : null,
      trial: t ? { id: t.row.id, number: t.row.number, label: t.row.label, state: t.state, cameras: t.cameras, trigger_source: t.row.trigger_source } : null,
      cameras: [...this.cameras.values()].map((c) => ({ ...c.describe(), ...c.telemetry(), armed: c.cam.armed, last_error: c.lastError })),
      disk: this.disk.status,
    };
  }

  private emitTelemetry(): void {
    const now = monoNowUs();
    for (const c of this.cameras.values()) {
      if (c.state === 'unassigned') continue;
      const t = c.telemetry();
      const cur = c.recorder?.current ?? null;
      let recordFps: number | null = null;
      if (cur) {
        const prev = this.lastFrames.get(c.id);
        if (prev && prev.frames <= cur.frames) recordFps = Math.round(((cur.frames - prev.frames) * 1e7) / (now - prev.at)) / 10;
        this.lastFrames.set(c.id, { frames: cur.frames, at: now });
      } else this.lastFrames.delete(c.id);
      this.report(
        'telemetry',
        {
          camera_id: c.id,
          capture_fps: t.capture_fps,
          record_fps: recordFps,
          queue_depth: t.queue_depth,
          frames_recorded: cur?.frames ?? null,
          frames_dropped: cur?.dropped ?? null,
          latency_ms: t.latency_ms,
          state: c.state,
          disk_free_bytes: this.disk.status?.free_bytes ?? null,
          disk_minutes_left: this.disk.status?.minutes_left ?? null,
        },
        c.id,
      );
    }
  }

  /** Emit a status to every subscriber and journal it (telemetry is not journalled: it is sampled, not an event). */
  report(status: string, data: Record<string, unknown>, cameraId: string | null = null, commandId: string | null = null): void {
    const msg: StatusMessage = {
      type: 'status',
      status,
      timestamp: Date.now() / 1000,
      mono_us: monoNowUs(),
      camera_id: cameraId,
      command_id: commandId,
      data,
    };
    if (status !== 'telemetry') {
      try {
        this.o.store.addEvent({ kind: 'status', name: status, cameraId, sessionId: this.session?.id ?? null, trialId: this.trial?.row.id ?? null, monoUs: msg.mono_us, payload: data });
      } catch (err) {
        this.o.log.error({ err: (err as Error).message }, 'journal write failed');
      }
      this.o.log.info({ status, camera: cameraId, ...data }, status);
    }
    this.emit('status', msg);
  }
}
