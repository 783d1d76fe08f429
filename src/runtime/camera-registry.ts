import { EventEmitter } from 'node:events';
import { realpathSync } from 'node:fs';
import type { z } from 'zod';
import { ControlStateStore } from '../cameras/control-state.ts';
import type { CameraConfig, Config } from '../config/schema.ts';
import { cameraSchema } from '../config/schema.ts';
import type { Logger } from '../log/logger.ts';
import type { SourceExit } from '../pipeline/camera-pipeline.ts';
import type { Store } from '../storage/store.ts';
import { parsePayload } from './command-bus.ts';
import { offeredMode } from './camera-setup.ts';
import { CameraRuntime, type DeviceReady } from './camera-runtime.ts';
import type { applyConfigSchema, assignDeviceSchema } from './commands.ts';
import { CommandError } from './errors.ts';
import type { EventBus } from './event-bus.ts';
import type { CameraStatus, StatusDataMap } from './status.ts';

/** A stable id from a free-form stable id (udev serial, by-path, picam:0): what file names can carry. */
export function cameraIdFromStableId(stable: string): string {
  const slug = stable.replace(/[^A-Za-z0-9_-]+/g, '-').replace(/^[-_]+|[-_]+$/g, '');
  return (slug || 'camera').slice(-32).replace(/^[-_]+/, '') || 'camera';
}

/** The same device node: equal paths, or links to one node (YAML `/dev/v4l/by-id/...`, host `/dev/video0`). */
function sameDevice(a: string, b: string): boolean {
  if (a === b) return true;
  try {
    return a.startsWith('/') && b.startsWith('/') && realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
}

/** What happens to a camera that the trial must hear of: the box turns each into an internal command. */
export interface RegistryEvents {
  device_lost: [id: string, message: string];
  recording_failed: [id: string, error: Error];
  segment: [id: string, s: { segment: number; recordingId: number; gapUs: number | null }];
}

export type CameraRef = string | { backend: string; stable_id: string } | undefined;

/**
 * Every camera of the box and its lifecycle: assign (and re-assign), unassign, apply_config, controls, reprobe,
 * hot-plug. It reports the device statuses; what concerns a trial it emits as typed events for the command bus.
 * The only owner of CameraRuntime objects: others get them read-only through `get`/`list`.
 */
export class CameraRegistry extends EventEmitter<RegistryEvents> {
  private readonly cameras = new Map<string, CameraRuntime>();
  /** Every camera by id, read-only. */
  readonly all: ReadonlyMap<string, CameraRuntime> = this.cameras;
  /** The box's remembered control changes (<data_dir>/camera-controls.json). */
  readonly controlState: ControlStateStore;
  private stateProblemReported = false;

  constructor(private readonly o: { config: Config; store: Store; log: Logger; bus: EventBus; templates?: readonly CameraConfig[]; sysRoot?: string }) {
    super();
    this.controlState = new ControlStateStore(o.config.data_dir, o.log);
    for (const cam of o.config.cameras) this.cameras.set(cam.id, this.newCamera(cam));
  }

  get(id: string): CameraRuntime | undefined {
    return this.cameras.get(id);
  }
  list(): CameraRuntime[] {
    return [...this.cameras.values()];
  }
  ids(): string[] {
    return [...this.cameras.keys()];
  }

  /** The camera a command names (or the only one), else not_found. */
  resolve(ref: CameraRef, stableId?: string): CameraRuntime {
    if (ref === undefined && stableId === undefined) {
      if (this.cameras.size === 1) return this.list()[0]!;
      throw new CommandError('invalid_payload', `camera_id is required (cameras: ${this.ids().join(', ') || 'none'})`, true, 'camera_id');
    }
    const id = typeof ref === 'string' ? ref : cameraIdFromStableId(ref?.stable_id ?? stableId!);
    const cam = this.cameras.get(id);
    if (!cam) throw new CommandError('not_found', `no camera "${id}" (cameras: ${this.ids().join(', ') || 'none'})`);
    return cam;
  }

  /** The cameras a trial records: those named, or every armed ready one; each must have a live stream. */
  forTrial(ids: readonly string[] | undefined): CameraRuntime[] {
    const wanted = ids ?? this.list().filter((c) => c.config.armed && c.state === 'ready').map((c) => c.id);
    if (!wanted.length) throw new CommandError('busy', 'no camera is ready to record');
    return wanted.map((id) => {
      const rt = this.resolve(id);
      const why = rt.notReadyReason();
      if (why) throw new CommandError('busy', why);
      return rt;
    });
  }

  private newCamera(cam: CameraConfig): CameraRuntime {
    const rt = new CameraRuntime(cam, {
      config: this.o.config,
      store: this.o.store,
      log: this.o.log,
      sysRoot: this.o.sysRoot,
      controlState: this.controlState,
      triggerHolder: (param, except) => this.list().find((c) => c.id !== except && c.triggerParamInUse === param)?.id ?? null,
    });
    const id = cam.id;
    rt.on('source_exit', (e: SourceExit) => {
      this.o.bus.report('source_exited', { camera_id: id, problem: e.problem, message: e.message, code: e.code, signal: e.signal, restart_in_ms: e.restartInMs }, id);
      if (e.problem === 'missing_device') this.emit('device_lost', id, e.message);
    });
    rt.on('device_back', () => this.o.bus.report('device_ready', { ...rt.describe(), reassigned: true }, id));
    rt.on('source_started', (run) => run > 1 && this.o.bus.report('source_started', { camera_id: id, run }, id));
    rt.on('recording_failed', (err) => this.emit('recording_failed', id, err));
    rt.on('segment', (s) => this.emit('segment', id, s));
    rt.on('controls_applied', (r) => {
      this.o.bus.report('controls_applied', { camera_id: id, ...r }, id);
      if (r.errors.length) this.o.bus.report('warning', { message: `camera ${id} controls not as wanted: ${r.errors.join('; ')}` }, id);
    });
    return rt;
  }

  /** Assign every configured camera (in parallel); each reports device_ready or device_error. */
  async assignAll(): Promise<void> {
    if (this.controlState.problem && !this.stateProblemReported) {
      this.stateProblemReported = true;
      this.o.bus.report('warning', { message: this.controlState.problem });
    }
    await Promise.all(this.list().map((c) => this.assignCamera(c, c.config).catch(() => undefined)));
  }

  private async assignCamera(rt: CameraRuntime, cam: CameraConfig, commandId: string | null = null, useDefaultMode = false): Promise<DeviceReady> {
    try {
      const ready = await rt.assign(cam, undefined, useDefaultMode);
      this.o.bus.report('device_ready', { ...ready }, rt.id, commandId);
      return ready;
    } catch (err) {
      const message = (err as Error).message;
      this.o.bus.report('device_error', { camera_id: rt.id, error: message, message }, rt.id, commandId);
      throw new CommandError('unavailable', `camera ${rt.id}: ${message}`);
    }
  }

  /** A camera request that cannot be served: device_error (the host reads that), then the refusal. */
  private refuseAssign(id: string, message: string, commandId: string | null): never {
    this.o.bus.report('device_error', { camera_id: id, error: message, message }, id, commandId);
    throw new CommandError('unavailable', `camera ${id}: ${message}`);
  }

  /**
   * Assign a camera: the seed's nested form or the host's flat one. The source comes from what was asked for
   * (`camera_type` usb → v4l2 by path, picam/csi → rpicam by index, test only when named); a real camera that
   * cannot be served is a device_error naming why, never the test source. The mode comes from a YAML camera
   * matching it (by device, id or CSI index), else the probed default record mode. Assigning the camera that is
   * already running with the same source and device is idempotent (the host re-sends assign_device): it is
   * answered from the running camera, without a restart, even during a trial.
   */
  async assign(p: z.infer<typeof assignDeviceSchema>, commandId: string | null): Promise<DeviceReady> {
    const stable = typeof p.camera_id === 'object' ? p.camera_id.stable_id : p.camera_stable_id;
    const kind = (p.camera_type ?? (typeof p.camera_id === 'object' ? p.camera_id.backend : p.camera_backend))?.toLowerCase();
    const devicePath = p.descriptor?.device_path ?? (p.camera_dev_path || undefined);
    const name = p.descriptor?.name ?? p.display_name ?? p.camera_name;
    const source: CameraConfig['source'] | undefined =
      kind === undefined ? (devicePath ? 'v4l2' : undefined) : kind === 'test' ? 'test' : /^(picam|csi|rpicam|libcamera)/.test(kind) ? 'rpicam' : 'v4l2';
    // CSI: the camera index from camera_index, a numeric stable id, or the N of the host's `picam:N`.
    let index: number | undefined;
    if (source === 'rpicam') {
      const fromId = /^picam:(\d{1,2})$/.exec(p.device_id ?? '')?.[1] ?? /^(?:picam:)?(\d{1,2})$/.exec(stable ?? '')?.[1];
      index = p.camera_index ?? (fromId !== undefined ? Number(fromId) : devicePath !== undefined && /^\d{1,2}$/.test(devicePath) ? Number(devicePath) : undefined);
    }
    let id: string;
    if (typeof p.camera_id === 'string') id = p.camera_id;
    else if (source === 'rpicam' && index !== undefined) id = cameraIdFromStableId(`picam:${index}`);
    else if (stable) id = cameraIdFromStableId(stable);
    else if (p.device_id) id = cameraIdFromStableId(p.device_id);
    else if (this.cameras.size === 1 && !devicePath) id = this.ids()[0]!;
    else throw new CommandError('invalid_payload', 'assign_device needs camera_id (a configured camera, or {backend, stable_id})', true, 'camera_id');
    const existing = this.cameras.get(id);
    if (source === 'rpicam' && index === undefined) this.refuseAssign(id, 'a CSI camera needs its index (camera_index, or device_id "picam:N")', commandId);
    if (source === 'v4l2' && !devicePath && !(existing?.config.source === 'v4l2' && typeof existing.config.device === 'string'))
      this.refuseAssign(id, `USB camera ${stable ?? p.device_id ?? id}: no device path (camera_dev_path) was given, so there is no camera to open`, commandId);
    if (!source && !existing) this.refuseAssign(id, 'assign_device names no camera: give camera_type (usb with camera_dev_path, picam with camera_index) or camera_backend', commandId);
    const device = source === 'rpicam' ? String(index) : devicePath;

    // The host re-sends assign_device until device_ready: the same camera, same source and device, is already running.
    if (existing && existing.state === 'ready' && (source === undefined || source === existing.config.source) && (device === undefined || String(existing.config.device) === device)) {
      if (name && name !== existing.config.name) await existing.applyConfig({ name });
      const ready = existing.describe();
      this.o.bus.report('device_ready', { ...ready }, id, commandId);
      return ready;
    }
    if (existing?.recording) throw new CommandError('conflict', `camera ${id} is recording: stop the trial first`);
    const template = this.templateFor(id, source, device);
    const base = existing?.config ?? template;
    const cam = parsePayload(cameraSchema, { ...(base ?? {}), id, ...(source ? { source } : {}), ...(name ? { name } : {}), ...(device !== undefined ? { device } : {}) }, 'device');
    const rt = existing ?? this.newCamera(cam);
    const ready = await this.assignCamera(rt, cam, commandId, !base);
    if (!existing) this.cameras.set(id, rt); // only a camera that works joins the box
    return ready;
  }

  /** The YAML camera a host-assigned one takes its settings from: same device path, same id, or same CSI index. */
  private templateFor(id: string, source: CameraConfig['source'] | undefined, device: string | undefined): CameraConfig | undefined {
    const t = this.o.templates ?? [];
    return (
      (device !== undefined ? t.find((c) => c.source === source && c.device !== undefined && sameDevice(String(c.device), device)) : undefined) ??
      t.find((c) => c.id === id && (source === undefined || c.source === source))
    );
  }

  /** Stop a camera's capture (its recording was stopped first) and report it released. */
  async release(rt: CameraRuntime): Promise<void> {
    await rt.unassign(3000);
    this.o.bus.report('device_released', { camera_id: rt.id, device_id: rt.id, port_released: true }, rt.id);
  }

  /**
   * Change a camera's settings: rigcam's keys and the seed's (record_resolution/record_fps, controls). Everything is
   * checked first — a mode the camera does not offer, a control it lacks or a value out of range is refused and
   * nothing changes; the preview, overlay and audio keys are accepted and stated as not applied.
   */
  async applyConfig(p: z.infer<typeof applyConfigSchema>, commandId: string | null = null): Promise<StatusDataMap['config_applied']> {
    const rt = this.resolve(p.camera_id);
    if (rt.recording) throw new CommandError('conflict', `camera ${rt.id} is recording: apply_config is refused during a trial`);
    const { camera_id: _id, record, record_resolution, record_fps, preview_resolution, preview_fps, overlay, record_audio, controls, ...flat } = p;
    void _id;
    const changes: Partial<CameraConfig> = { ...flat, ...(record ?? {}), ...(record_resolution ?? {}), ...(record_fps !== undefined ? { fps: record_fps } : {}) };
    const next = parsePayload(cameraSchema, { ...rt.config, ...changes }, 'config');
    const caps = rt.capabilities;
    const modeChanged = next.width !== rt.config.width || next.height !== rt.config.height || next.fps !== rt.config.fps || next.input_format !== rt.config.input_format;
    if (modeChanged && next.source === 'v4l2' && caps?.modes.length && !offeredMode(next, caps)) {
      const list = caps.modes.map((m) => `${m.format} ${m.width}x${m.height}@${m.fps.join('/')}`).join(', ');
      throw new CommandError('conflict', `camera ${rt.id} does not offer ${next.width}x${next.height}@${next.fps}${next.input_format ? ` ${next.input_format}` : ''} (it offers: ${list}); nothing changed`);
    }
    for (const [name, value] of Object.entries(controls ?? {})) {
      const why = rt.checkControl(name, value);
      if (why) throw new CommandError('conflict', `${why}; nothing changed`);
    }
    const notApplied: Record<string, string> = {};
    if (preview_resolution !== undefined || preview_fps !== undefined) notApplied.preview = 'rigcam has no separate preview stream: the preview shows the recorded stream';
    if (overlay !== undefined) notApplied.overlay = 'rigcam burns no overlay into the video (frame times are in the CSV)';
    if (record_audio !== undefined) notApplied.record_audio = 'rigcam records no audio';
    let res;
    try {
      res = await rt.applyConfig(changes);
    } catch (err) {
      const message = (err as Error).message;
      this.o.bus.report('device_error', { camera_id: rt.id, error: message, message }, rt.id, commandId);
      throw new CommandError('unavailable', `camera ${rt.id}: ${message} (previous settings kept)`);
    }
    const applied: Record<string, number | string> = {};
    for (const [name, value] of Object.entries(controls ?? {})) {
      try {
        applied[name] = (await rt.controlChange(name, value)).value;
      } catch (err) {
        throw new CommandError('unavailable', `camera ${rt.id}: the mode was applied, but control ${name}: ${(err as Error).message}`);
      }
    }
    const data = { ...res.camera, restarted: res.restarted, ...(controls ? { controls: applied } : {}), ...(Object.keys(notApplied).length ? { not_applied: notApplied } : {}) };
    this.o.bus.report('config_applied', data, rt.id, commandId);
    return data;
  }

  async control(ref: string | undefined, control: string, value: number | boolean | string, persist = true): Promise<StatusDataMap['control_changed']> {
    const rt = this.resolve(ref);
    let res;
    try {
      res = await rt.controlChange(control, value, persist);
    } catch (err) {
      // Refused by the camera's probed ranges or by v4l2-ctl: nothing was changed on the camera.
      throw new CommandError('conflict', (err as Error).message);
    }
    const data = { camera_id: rt.id, ...res };
    this.o.bus.report('control_changed', data, rt.id);
    return data;
  }

  async reprobe(ref: CameraRef, stableId?: string): Promise<StatusDataMap['capabilities']> {
    const rt = this.resolve(ref, stableId);
    let caps;
    try {
      caps = await rt.reprobe();
    } catch (err) {
      throw new CommandError('unavailable', `camera ${rt.id}: ${(err as Error).message}`);
    }
    const data = { camera_id: rt.id, capabilities: caps };
    this.o.bus.report('capabilities', data, rt.id);
    return data;
  }

  /** Per-camera status: description, live telemetry, armed, last error. */
  status(): CameraStatus[] {
    return this.list().map((c) => ({ ...c.describe(), ...c.telemetry(), armed: c.config.armed, last_error: c.lastError, ...(c.sync ? { sync: c.sync } : {}) }));
  }

  /** Bytes/s that recording adds to the disk: the cameras given, or every armed camera (what a start would write). */
  writeRate(recording: readonly string[]): number {
    const cams = this.list().filter((c) => (recording.length ? recording.includes(c.id) : c.config.armed));
    return cams.reduce((n, c) => n + (c.stats()?.bytesPerSecond ?? 0), 0);
  }
}
