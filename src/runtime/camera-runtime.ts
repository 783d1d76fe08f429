import { EventEmitter } from 'node:events';
import type { CameraConfig, Config } from '../config/schema.ts';
import { cameraSchema } from '../config/schema.ts';
import type { Logger } from '../log/logger.ts';
import { CameraPipeline, firstKeyframe, type PipelineStats } from '../pipeline/camera-pipeline.ts';
import { CameraRecorder, type RecorderStart } from '../recording/camera-recorder.ts';
import type { RecordingSummary } from '../recording/recording-file.ts';
import { stopHoldMs } from '../recording/stop-hold.ts';
import type { Store } from '../storage/store.ts';
import { makeSourceSpec, type ConcreteEncoder } from '../sources/make-spec.ts';
import type { SourceExit } from '../pipeline/camera-pipeline.ts';
import type { V4l2Control } from '../cameras/v4l2-controls.ts';
import { applyControls, setControl, validateControlValue, wantedControls } from '../cameras/controls.ts';
import type { ControlStateStore } from '../cameras/control-state.ts';
import { existsSync } from 'node:fs';
import { buildProbeResult } from '../cameras/probe.ts';
import { monoNowUs } from '../clock.ts';
import { parseRpicamControl, reportedControlValue, type RpicamControlName, type RpicamControls } from '../sources/rpicam-controls.ts';
import type { RpicamSyncEvent, RpicamSyncState } from '../sources/rpicam-source.ts';
import { readSensorTriggerMode, sensorTriggerParam, setSensorTriggerModeSync } from '../sources/sensor-trigger.ts';
import { rpiTargetOf, writeTriggerPipelineConfig } from '../sources/rpi-pipeline-config.ts';
import { needsRestart, pickEncoder, pickMode, probeCamera, readControls, type Capabilities, type Probed } from './camera-setup.ts';

export type { Capabilities } from './camera-setup.ts';

export type CameraState = 'unassigned' | 'starting' | 'ready' | 'error';

export type CameraSyncState = RpicamSyncState;

export type DeviceReady = {
  camera_id: string;
  name: string;
  resolution: string;
  fps: number;
  encoder: string;
  source: string;
  device: string | null;
};

/** What a frame sink (the preview) may use of the camera's live stream. */
export type FrameSource = Pick<CameraPipeline, 'cameraId' | 'psi' | 'ring' | 'on' | 'off'>;

/** Told the camera's current stream now and whenever it changes (re-assignment, apply_config, unassign: null). */
export interface FrameSink {
  setSource(source: FrameSource | null): void;
}

/** The recording of this camera as it stands (a copy). */
export type CurrentRecording = NonNullable<CameraRecorder['current']>;

export interface CameraEvents {
  /** The source process exited (it is restarted with back-off). */
  source_exit: [SourceExit];
  source_started: [number];
  /** Video again after the device was lost (replugged). */
  device_back: [];
  /** The recording could not be written (disk full...): this camera's recording has stopped. */
  recording_failed: [Error];
  /** The source restarted mid-recording: a new segment file began. */
  segment: [{ segment: number; recordingId: number; gapUs: number | null }];
  /** The live stream was replaced (or removed: null). */
  source: [FrameSource | null];
  /** The configured and remembered controls were applied at a source start and read back. */
  controls_applied: [{ trigger: 'start' | 'restart'; applied: Record<string, number>; errors: string[] }];
}

/** What it takes to probe and run a camera; shared by every camera of a box. */
export interface CameraEnv {
  config: Config;
  store: Store;
  log: Logger;
  /** Where /sys and /usr/share are ("/" unless a test stands in for them). */
  sysRoot?: string;
  /** Another camera of the box whose running source holds this trigger parameter at 1 (null: none). */
  triggerHolder?: (param: string, exceptCameraId: string) => string | null;
  /** The box's remembered control changes (absent: nothing is remembered). */
  controlState?: ControlStateStore;
}

/**
 * One camera of the box: probing, mode and encoder choice, its continuous capture pipeline and its recorder, both
 * private. Others read snapshots (describe, telemetry, stats), drive the recording through methods, attach frame
 * sinks, and listen to typed events. Assignment builds the new pipeline beside the old one and swaps only once the
 * new one delivers video, so a failed assign leaves the previous state intact.
 */
export class CameraRuntime extends EventEmitter<CameraEvents> {
  private st: CameraState = 'unassigned';
  private cfg: CameraConfig;
  private caps: Capabilities | null = null;
  private pipeline: CameraPipeline | null = null;
  private recorder: CameraRecorder | null = null;
  private encoderName: string | null = null;
  private error: string | null = null;
  private v4l2Controls: V4l2Control[] = [];
  private readonly syncOf = new WeakMap<CameraPipeline, CameraSyncState>();
  /** Sync pipelines whose current run has delivered a keyframe since the sync (what a trial can start from). */
  private readonly syncStreaming = new WeakSet<CameraPipeline>();
  /** 'change' (pipeline) whenever a sync state changes. */
  private readonly syncEvents = new EventEmitter<{ change: [CameraPipeline] }>();
  /** Controls not as wanted after the last source start (missing, refused, read back different), or null. */
  private controlsProblem: string | null = null;
  /** Control applications run one at a time (a restart may come while the first start's are running). */
  private controlsQueue: Promise<void> = Promise.resolve();
  /** The sensor trigger parameter this camera set to 1 and has not set back (null: none). */
  private triggerParamSet: string | null = null;

  constructor(
    cam: CameraConfig,
    private readonly env: CameraEnv,
  ) {
    super();
    // A CSI camera's remembered control_changes override the config's options for every rpicam-vid run of this
    // runtime (a persist:false change replaces them in the running config only, so a restart of rigcam drops it).
    const remembered = cam.source === 'rpicam' ? env.controlState?.getRpicam(cam.id) : undefined;
    this.cfg = remembered && Object.keys(remembered).length ? { ...cam, rpicam: { ...(cam.rpicam ?? {}), ...remembered } } : cam;
  }

  get id(): string {
    return this.cfg.id;
  }
  get state(): CameraState {
    return this.st;
  }
  /** The effective configuration (after mode choice). */
  get config(): Readonly<CameraConfig> {
    return this.cfg;
  }
  get capabilities(): Capabilities | null {
    return this.caps;
  }
  get lastError(): string | null {
    return this.error ?? this.controlsProblem;
  }
  get recording(): boolean {
    return this.recorder?.active ?? false;
  }
  /** Has a live stream a trial could record. */
  get canRecord(): boolean {
    return this.notReadyReason() === null;
  }
  /** Why a trial cannot record this camera now, or null. */
  notReadyReason(): string | null {
    if (this.st !== 'ready' || this.recorder === null) return `camera ${this.id} is not ready (${this.st}${this.error ? `: ${this.error}` : ''})`;
    const sync = this.sync;
    if (sync && sync.state !== 'achieved')
      return sync.mode === 'client'
        ? `camera ${this.id} is waiting for rpicam-vid --sync (client): no sync yet with a server camera on the network (${sync.state})`
        : `camera ${this.id} is waiting for rpicam-vid --sync (server): not yet at its ready frame (${sync.state})`;
    if (sync && this.pipeline && !this.syncStreaming.has(this.pipeline)) return `camera ${this.id}: rpicam-vid --sync achieved, waiting for its first frame`;
    return null;
  }
  /** The --sync progress of the running source (null: not a sync camera, or no source). */
  get sync(): CameraSyncState | null {
    const s = this.pipeline ? this.syncOf.get(this.pipeline) : undefined;
    return s ? { ...s } : null;
  }
  get current(): CurrentRecording | null {
    const c = this.recorder?.current;
    return c ? { ...c, pending: { ...c.pending } } : null;
  }
  stats(): (PipelineStats & { sourcePid: number | null }) | null {
    return this.pipeline ? { ...this.pipeline.stats(), sourcePid: this.pipeline.sourcePid } : null;
  }

  /** The live stream now (null when unassigned), for a frame sink or a tap; `attachSink` follows changes. */
  frameSource(): FrameSource | null {
    return this.pipeline;
  }

  /** Feed a sink the live stream, now and after every change; returns the detach function. */
  attachSink(sink: FrameSink): () => void {
    const on = (s: FrameSource | null): void => sink.setSource(s);
    this.on('source', on);
    sink.setSource(this.pipeline);
    return () => this.off('source', on);
  }

  /** Probe, choose mode and encoder, start the source and wait for its first keyframe. */
  async assign(cam: CameraConfig = this.cfg, timeoutMs = 15_000, useDefaultMode = false): Promise<DeviceReady> {
    if (this.recording) throw new Error(`camera ${cam.id} is recording: stop the trial first`);
    let pipeline: CameraPipeline | null = null;
    let probed: Probed;
    let effective: CameraConfig;
    let spec: ReturnType<typeof makeSourceSpec>;
    try {
      probed = await probeCamera(cam, this.env.log);
      effective = pickMode(cam, probed.caps, this.env.log, useDefaultMode);
      const encoder = await pickEncoder(effective);
      spec = makeSourceSpec(effective, encoder); // validates the combination before anything starts
      pipeline = this.newPipeline(effective, encoder, probed.csi);
      if (!this.pipeline) this.st = 'starting';
      pipeline.start();
      // A sync camera encodes nothing until the boxes are in step (maybe minutes, until the server box starts):
      // assigned once rpicam-vid runs the camera; trials wait for the sync (notReadyReason).
      const p = pipeline;
      await (this.syncOf.has(p) ? Promise.race([firstKeyframe(p, timeoutMs), this.syncRunning(p, timeoutMs)]) : firstKeyframe(p, timeoutMs));
    } catch (err) {
      await pipeline?.stop();
      // A camera that was running keeps running as it was; one that was not is now in error, with the reason.
      if (!this.pipeline) {
        this.st = 'error';
        this.error = (err as Error).message;
        this.releaseTrigger();
      }
      throw err;
    }
    const old = this.pipeline;
    this.pipeline = pipeline;
    this.recorder = this.newRecorder(pipeline);
    this.cfg = effective;
    this.caps = probed.caps;
    this.v4l2Controls = probed.controls;
    this.encoderName = spec.encoder;
    this.st = 'ready';
    this.error = null;
    this.emit('source', pipeline);
    if (old) await old.stop();
    await this.applyStartControls('start');
    try {
      this.env.store.upsertCamera({ id: cam.id, name: cam.name ?? cam.id, backend: cam.source, devicePath: typeof cam.device === 'string' ? cam.device : null });
    } catch (err) {
      // Descriptive only (nothing references it): a database that cannot be written (a full disk at start-up) does
      // not make a working camera fail; it is written at the next assignment.
      this.env.log.warn({ camera: cam.id, err: (err as Error).message }, 'camera not written to the database');
    }
    return this.describe();
  }

  describe(): DeviceReady {
    return {
      camera_id: this.cfg.id,
      name: this.cfg.name ?? this.cfg.id,
      resolution: `${this.cfg.width}x${this.cfg.height}`,
      fps: this.cfg.fps,
      encoder: this.encoderName ?? 'none',
      source: this.cfg.source,
      device: typeof this.cfg.device === 'string' ? this.cfg.device : null,
    };
  }

  /** Stop capture within a bounded time. The caller stops a recording first. */
  async unassign(timeoutMs = 3000): Promise<void> {
    const p = this.pipeline;
    this.pipeline = null;
    this.recorder = null;
    this.st = 'unassigned';
    if (p) this.emit('source', null);
    if (p) await p.stop(timeoutMs);
    this.releaseTrigger();
  }

  /** The trigger parameter this camera set to 1 for its runs (starting or running) and has not set back; null: none. */
  get triggerParamInUse(): string | null {
    return this.triggerParamSet;
  }

  /**
   * Before every rpicam-vid run (the first and each restart): a triggered camera's sensor is put in trigger mode and
   * its run gets the pipeline configuration raising libcamera's frame timeout; a free-running camera's sensor (and
   * the parameter this camera last triggered) is set back to free-running, unless another running camera of the box
   * triggers the same driver (then this camera cannot free-run: refused with the reason). Throws: the run does not start.
   */
  private prepareCsiRun(cam: CameraConfig, csi: Probed['csi']): { pipelineConfigFile?: string } {
    if (cam.source !== 'rpicam') return {};
    const sysRoot = this.env.sysRoot ?? '/';
    if (cam.trigger) {
      if (!csi) throw new Error(`camera ${cam.id}: not probed (no libcamera path to choose its pipeline configuration by)`);
      if (this.triggerParamSet && this.triggerParamSet !== cam.trigger.module_param) this.releaseTrigger();
      setSensorTriggerModeSync(cam.trigger.module_param, 1, sysRoot);
      this.triggerParamSet = cam.trigger.module_param;
      const written = writeTriggerPipelineConfig({
        dataDir: this.env.config.data_dir,
        cameraId: cam.id,
        target: rpiTargetOf(csi.path),
        timeoutMs: cam.trigger.camera_timeout_ms,
        inherited: process.env.LIBCAMERA_RPI_CONFIG_FILE || undefined,
        fsRoot: sysRoot,
      });
      return { pipelineConfigFile: written.file };
    }
    const own = csi ? sensorTriggerParam(csi.sensor) : null;
    if (this.triggerParamSet && this.triggerParamSet !== own) this.releaseTrigger();
    if (own && readSensorTriggerMode(own, sysRoot) !== null && readSensorTriggerMode(own, sysRoot) !== '0') {
      const holder = this.env.triggerHolder?.(own, cam.id) ?? null;
      if (holder)
        throw new Error(
          `camera ${cam.id} is free-running, but camera ${holder} triggers the same sensor driver (${own} is one setting for every ${csi!.sensor}): configure both with trigger or neither`,
        );
      setSensorTriggerModeSync(own, 0, sysRoot);
      this.env.log.info({ camera: cam.id, param: own }, 'sensor was in external trigger mode: set back to free-running before start');
      if (this.triggerParamSet === own) this.triggerParamSet = null;
    }
    return {};
  }

  /** Set the trigger parameter this camera set back to 0, unless another running camera holds it (logged, never thrown). */
  private releaseTrigger(): void {
    const param = this.triggerParamSet;
    if (!param) return;
    const holder = this.env.triggerHolder?.(param, this.id) ?? null;
    if (holder) {
      this.triggerParamSet = null; // the other camera sets it back when it stops
      return;
    }
    try {
      setSensorTriggerModeSync(param, 0, this.env.sysRoot ?? '/');
      this.triggerParamSet = null;
      this.env.log.info({ camera: this.id, param }, 'sensor set back to free-running (trigger_mode 0)');
    } catch (err) {
      // Not held any longer either way: a free-running start of that sensor tries again and reports why it cannot.
      this.triggerParamSet = null;
      this.env.log.warn({ camera: this.id, param, err: (err as Error).message }, 'sensor trigger mode could not be set back to 0');
    }
  }

  async applyConfig(changes: Partial<CameraConfig>): Promise<{ restarted: boolean; camera: DeviceReady }> {
    const next = cameraSchema.parse({ ...this.cfg, ...changes });
    if (this.pipeline && needsRestart(this.cfg, next)) {
      if (this.cfg.source === 'rpicam') await this.restartExclusive(next, this.cfg);
      else await this.assign(next);
      return { restarted: true, camera: this.describe() };
    }
    this.cfg = next;
    return { restarted: false, camera: this.describe() };
  }

  /** Why a control change would be refused (no such control, value out of the probed range), or null. */
  checkControl(name: string, value: number | boolean | string): string | null {
    if (this.cfg.source === 'rpicam') {
      const p = parseRpicamControl(name, value);
      return p.ok ? null : `camera ${this.id}: ${p.error}`;
    }
    if (this.cfg.source !== 'v4l2' || typeof this.cfg.device !== 'string') return `camera ${this.id} has no adjustable controls (source ${this.cfg.source})`;
    const control = this.v4l2Controls.find((c) => c.name === name);
    if (!control) return `camera ${this.id} has no control "${name}"${this.v4l2Controls.length ? ` (it has: ${this.v4l2Controls.map((c) => c.name).join(', ')})` : ''}`;
    const check = validateControlValue(control, value);
    return check.ok ? null : check.error;
  }

  /**
   * A CSI control: rpicam-vid takes controls only on its command line, so the source is restarted with them
   * (between trials only; the restart is a gap in the live stream). Nothing changes when the value is refused; when
   * the new run fails to start, the previous controls are started again and the error is thrown.
   */
  private async rpicamControlChange(name: string, value: number | boolean | string, persist: boolean): Promise<{ control: string; value: number | string; persisted: boolean }> {
    const parsed = parseRpicamControl(name, value);
    if (!parsed.ok) throw new Error(`camera ${this.id}: ${parsed.error}`);
    if (this.recording) throw new Error(`camera ${this.id} is recording: CSI controls are applied by restarting rpicam-vid, which is refused during a trial (nothing changed)`);
    const prev = this.cfg;
    const next: CameraConfig = { ...prev, rpicam: { ...(prev.rpicam ?? {}), [parsed.name]: parsed.value } as RpicamControls };
    if (this.pipeline) await this.restartExclusive(next, prev);
    else this.cfg = next;
    const reported = reportedControlValue(parsed.value);
    if (persist && this.env.controlState) {
      try {
        this.env.controlState.setRpicam(this.id, parsed.name, reported);
      } catch (err) {
        throw new Error(`control ${parsed.name} is set to ${reported}, but it could not be remembered: ${(err as Error).message}`);
      }
    }
    return { control: parsed.name, value: reported, persisted: persist && this.env.controlState !== undefined };
  }

  /** The camera must be released before a new rpicam-vid can acquire it (libcamera: one process per camera). */
  private async restartExclusive(next: CameraConfig, prev: CameraConfig): Promise<void> {
    await this.unassign();
    try {
      await this.assign(next);
    } catch (err) {
      await this.assign(prev).catch((e: Error) => this.env.log.error({ camera: this.id, err: e.message }, 'previous CSI settings could not be restarted either'));
      throw err;
    }
  }

  /**
   * Set one control, read it back, and (unless `persist` is false) remember it in the box's control state so every
   * later source start applies it again. A value the driver did not take as given (clamped) is an error and is not
   * remembered. During a recording the change goes into its sidecar.
   */
  async controlChange(name: string, value: number | boolean | string, persist = true): Promise<{ control: string; value: number | string; persisted: boolean }> {
    // CSI: applied by restarting rpicam-vid (between trials), remembered like a V4L2 control.
    if (this.cfg.source === 'rpicam') return this.rpicamControlChange(name, value, persist);
    if (this.cfg.source !== 'v4l2' || typeof this.cfg.device !== 'string') throw new Error(`camera ${this.id} has no adjustable controls (source ${this.cfg.source})`);
    const device = this.cfg.device;
    const control = this.v4l2Controls.find((c) => c.name === name);
    if (!control) throw new Error(`camera ${this.id} has no control "${name}"${this.v4l2Controls.length ? ` (it has: ${this.v4l2Controls.map((c) => c.name).join(', ')})` : ''}`);
    const check = validateControlValue(control, value);
    if (!check.ok) throw new Error(check.error);
    const res = await setControl(device, name, check.value, { control });
    if (!res.ok) throw new Error(res.error ?? `v4l2-ctl failed: ${res.stderr}`);
    // Read back so the status and the web page show what the driver actually holds.
    const now = await readControls(device);
    if (now) {
      this.v4l2Controls = now.controls;
      if (this.caps) this.caps.controls = now.caps;
    }
    const held = now?.controls.find((c) => c.name === name)?.value;
    if (held === undefined) throw new Error(`control ${name}: set, but it could not be read back; not remembered`);
    this.recorder?.noteControlChange({ at: new Date().toISOString(), mono_us: monoNowUs(), control: name, value: held, persisted: persist && held === check.value });
    if (held !== check.value) throw new Error(`control ${name}: set to ${check.value}, but the camera holds ${held} (read back); not remembered`);
    if (persist && this.env.controlState) {
      try {
        this.env.controlState.set(this.id, device, name, held);
      } catch (err) {
        throw new Error(`control ${name} is set to ${held}, but it could not be remembered: ${(err as Error).message}`);
      }
    }
    return { control: name, value: held, persisted: persist && this.env.controlState !== undefined };
  }

  /**
   * At every source start: the config's controls, overridden by the remembered ones, applied and read back. Not a
   * reason to stop the camera (the video is still good): what is not as wanted is this camera's last_error and is
   * reported (controls_applied with its errors).
   */
  private applyStartControls(trigger: 'start' | 'restart'): Promise<void> {
    const run = async (): Promise<void> => {
      const device = this.cfg.device;
      if (this.cfg.source !== 'v4l2' || typeof device !== 'string') return;
      const remembered = this.env.controlState?.get(this.id) ?? {};
      const configured = this.cfg.controls ?? {};
      if (!Object.keys(remembered).length && !Object.keys(configured).length) return;
      if (!existsSync(device)) return; // unplugged: applied when the source starts on the device again
      const listing = trigger === 'start' && this.v4l2Controls.length ? this.v4l2Controls : ((await readControls(device))?.controls ?? this.v4l2Controls);
      const wanted = wantedControls(configured, remembered, listing);
      const res = await applyControls(device, wanted, listing);
      if (res.listing) {
        this.v4l2Controls = res.listing.controls;
        if (this.caps) this.caps.controls = buildProbeResult('', res.listing.text).controls;
      }
      this.controlsProblem = res.errors.length ? `camera ${this.id} controls: ${res.errors.join('; ')}` : null;
      if (res.errors.length) this.env.log.warn({ camera: this.id, errors: res.errors }, 'camera controls not as wanted');
      this.emit('controls_applied', { trigger, applied: res.applied, errors: res.errors });
    };
    this.controlsQueue = this.controlsQueue.then(run, run).catch((err: unknown) => {
      this.env.log.error({ camera: this.id, err: (err as Error).message }, 'camera controls not applied');
    });
    return this.controlsQueue;
  }

  /**
   * What a recording's sidecar starts with: every control value the driver held at the last read (V4L2), or the
   * options this rpicam-vid run was started with (CSI); undefined when there are none.
   */
  private controlValues(): Record<string, number | string> | undefined {
    if (this.cfg.source === 'rpicam') {
      const entries = Object.entries(this.cfg.rpicam ?? {}).filter(([, v]) => v !== undefined) as Array<[RpicamControlName, NonNullable<RpicamControls[RpicamControlName]>]>;
      return entries.length ? Object.fromEntries(entries.map(([k, v]) => [k, reportedControlValue(v)])) : undefined;
    }
    if (this.cfg.source !== 'v4l2' || !this.v4l2Controls.length) return undefined;
    const out: Record<string, number> = {};
    for (const c of this.v4l2Controls) if (c.value !== undefined && !c.readOnly) out[c.name] = c.value;
    return out;
  }

  async reprobe(): Promise<Capabilities> {
    const probed = await probeCamera(this.cfg, this.env.log);
    this.caps = probed.caps;
    this.v4l2Controls = probed.controls;
    return probed.caps;
  }

  // ---- recording (driven by the trial controller) -------------------------------------------------------

  startRecording(s: RecorderStart): { recordingId: number; path: string } {
    if (!this.recorder) throw new Error(`camera ${this.id} is not ready (${this.st})`);
    const controls = this.controlValues();
    return this.recorder.start({ ...s, ...(controls ? { controls } : {}) });
  }
  stopRecording(atUs: number, reason: string | null): Promise<RecordingSummary[]> {
    return this.recorder?.stop(atUs, reason) ?? Promise.resolve([]);
  }
  abortRecording(reason: string, state: 'complete' | 'interrupted' = 'complete'): Promise<RecordingSummary[]> {
    return this.recorder?.abort(reason, state) ?? Promise.resolve([]);
  }
  pauseRecording(atUs: number): void {
    this.recorder?.pause(atUs);
  }
  resumeRecording(atUs: number): void {
    this.recorder?.resume(atUs);
  }

  private newRecorder(pipeline: CameraPipeline): CameraRecorder {
    const rec = new CameraRecorder(pipeline, {
      store: this.env.store,
      log: this.env.log,
      fsyncIntervalMs: this.env.config.recording.fsync_interval_ms,
      stopWaitMs: this.env.config.recording.stop_wait_ms,
      stopHoldMs: stopHoldMs(this.env.config),
      cameraSync: () => (this.pipeline === pipeline ? this.sync : null),
      hwTrigger: () => (this.cfg.source === 'rpicam' ? (this.cfg.trigger ?? null) : null),
    });
    rec.on('failed', ({ error }) => this.recorder === rec && this.emit('recording_failed', error));
    rec.on('segment', (s) => this.recorder === rec && this.emit('segment', s));
    return rec;
  }

  /** Resolves when a sync camera's rpicam-vid runs the camera (waiting or achieved); rejects on exit or timeout. */
  private syncRunning(p: CameraPipeline, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`rpicam-vid did not start the camera within ${timeoutMs / 1000} s`)), timeoutMs);
      const check = (changed: CameraPipeline = p): void => {
        if (changed === p && this.syncOf.get(p)?.state !== 'starting') done();
      };
      const onExit = (e: SourceExit): void => done(new Error(e.message));
      const done = (err?: Error): void => {
        clearTimeout(timer);
        this.syncEvents.off('change', check);
        p.off('exit', onExit);
        if (err) reject(err);
        else resolve();
      };
      this.syncEvents.on('change', check);
      p.on('exit', onExit);
      check();
    });
  }

  private newPipeline(cam: CameraConfig, encoder: ConcreteEncoder | undefined, csi: Probed['csi']): CameraPipeline {
    const cfg = this.env.config;
    const mode = cam.source === 'rpicam' && (cam.sync === 'server' || cam.sync === 'client') ? cam.sync : null;
    let p: CameraPipeline | undefined = undefined;
    const setSync = (patch: Partial<CameraSyncState>): void => {
      if (!p) return;
      const s = this.syncOf.get(p);
      if (!s) return;
      Object.assign(s, patch);
      this.syncEvents.emit('change', p);
    };
    const onSync = (e: RpicamSyncEvent): void => {
      if (e.kind === 'waiting') setSync({ state: 'waiting' });
      else {
        setSync({ state: 'achieved', difference_us: e.differenceUs, achieved_mono_us: monoNowUs() });
        this.env.log.info({ camera: cam.id, mode, difference_us: e.differenceUs }, 'rpicam-vid --sync achieved');
      }
    };
    p = new CameraPipeline(cam.id, () => makeSourceSpec(cam, encoder, { onSync, ...this.prepareCsiRun(cam, csi) }), {
      backoff: { initialMs: cfg.supervisor.restart_initial_ms, maxMs: cfg.supervisor.restart_max_ms, healthyAfterMs: cfg.supervisor.healthy_after_ms },
      ringWindowUs: (cfg.recording.preroll_seconds + 2 * cam.gop_seconds + 1) * 1e6,
      ringMaxBytes: cfg.recording.preroll_max_mb * 1024 * 1024,
      log: this.env.log,
    });
    if (mode) {
      this.syncOf.set(p, { mode, state: 'starting', difference_us: null, achieved_mono_us: null });
      // Every run syncs anew; frames only flow after the sync, so a frame proves it even without the log line.
      const reset = (): void => {
        this.syncStreaming.delete(p!);
        setSync({ state: 'starting', difference_us: null, achieved_mono_us: null });
      };
      p.on('started', reset);
      p.on('exit', reset);
      p.on('frame', (f) => {
        if (this.syncOf.get(p!)?.state !== 'achieved') setSync({ state: 'achieved', achieved_mono_us: monoNowUs() });
        if (f.au.keyframe && !this.syncStreaming.has(p!)) {
          this.syncStreaming.add(p!);
          this.syncEvents.emit('change', p!);
        }
      });
    }
    p.on('exit', (e) => {
      if (this.pipeline !== p) return;
      this.error = e.message;
      if (e.problem === 'missing_device') this.st = 'error';
      this.emit('source_exit', e);
    });
    // A lost device that comes back (same stable path) is re-assigned by itself: the supervisor kept retrying.
    p.on('frame', (f) => {
      if (this.pipeline === p && this.st === 'error' && f.au.keyframe) {
        this.st = 'ready';
        this.error = null;
        this.emit('device_back');
      }
    });
    p.on('started', (s) => {
      if (this.pipeline !== p) return;
      this.emit('source_started', s.run);
      // A restarted source (after a crash, or a replugged camera whose controls are back at their defaults):
      // the controls again. The first run's are applied by assign(), once the new pipeline is this camera's.
      if (s.run > 1) void this.applyStartControls('restart');
    });
    return p;
  }

  telemetry(): { camera_id: string; state: CameraState; capture_fps: number; latency_ms: number | null; recording: boolean; recorder_state: string; frames_recorded: number | null; frames_dropped: number | null; queue_depth: { bytes: number; frames: number }; source_restarts: number; at_mono_us: number } {
    const st = this.pipeline?.stats();
    const cur = this.recorder?.current ?? null;
    return {
      camera_id: this.id,
      state: this.st,
      capture_fps: st?.captureFps ?? 0,
      latency_ms: st?.latencyUs != null ? Math.round(st.latencyUs / 100) / 10 : null,
      recording: this.recording,
      recorder_state: this.recorder?.state ?? 'idle',
      frames_recorded: cur?.frames ?? null,
      frames_dropped: cur?.dropped ?? null,
      queue_depth: cur ? cur.pending : { bytes: 0, frames: 0 },
      source_restarts: Math.max(0, (st?.run ?? 1) - 1),
      at_mono_us: monoNowUs(),
    };
  }
}
