import { EventEmitter } from 'node:events';
import type { z } from 'zod';
import type { CameraConfig, Config } from '../config/schema.ts';
import { cameraSchema } from '../config/schema.ts';
import type { Logger } from '../log/logger.ts';
import type { SourceExit } from '../pipeline/camera-pipeline.ts';
import type { Store } from '../storage/store.ts';
import { parsePayload } from './command-bus.ts';
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

  constructor(private readonly o: { config: Config; store: Store; log: Logger; bus: EventBus }) {
    super();
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
      if (!rt.canRecord) throw new CommandError('busy', `camera ${id} is not ready (${rt.state}${rt.lastError ? `: ${rt.lastError}` : ''})`);
      return rt;
    });
  }

  private newCamera(cam: CameraConfig): CameraRuntime {
    const rt = new CameraRuntime(cam, { config: this.o.config, store: this.o.store, log: this.o.log });
    const id = cam.id;
    rt.on('source_exit', (e: SourceExit) => {
      this.o.bus.report('source_exited', { camera_id: id, problem: e.problem, message: e.message, code: e.code, signal: e.signal, restart_in_ms: e.restartInMs }, id);
      if (e.problem === 'missing_device') this.emit('device_lost', id, e.message);
    });
    rt.on('device_back', () => this.o.bus.report('device_ready', { ...rt.describe(), reassigned: true }, id));
    rt.on('source_started', (run) => run > 1 && this.o.bus.report('source_started', { camera_id: id, run }, id));
    rt.on('recording_failed', (err) => this.emit('recording_failed', id, err));
    rt.on('segment', (s) => this.emit('segment', id, s));
    return rt;
  }

  /** Assign every configured camera (in parallel); each reports device_ready or device_error. */
  async assignAll(): Promise<void> {
    await Promise.all(this.list().map((c) => this.assignCamera(c, c.config).catch(() => undefined)));
  }

  private async assignCamera(rt: CameraRuntime, cam: CameraConfig, commandId: string | null = null): Promise<DeviceReady> {
    try {
      const ready = await rt.assign(cam);
      this.o.bus.report('device_ready', { ...ready }, rt.id, commandId);
      return ready;
    } catch (err) {
      const message = (err as Error).message;
      this.o.bus.report('device_error', { camera_id: rt.id, error: message, message }, rt.id, commandId);
      throw new CommandError('unavailable', `camera ${rt.id}: ${message}`);
    }
  }

  async assign(p: z.infer<typeof assignDeviceSchema>, commandId: string | null): Promise<DeviceReady> {
    const stable = typeof p.camera_id === 'object' ? p.camera_id.stable_id : p.camera_stable_id;
    const backend = (typeof p.camera_id === 'object' ? p.camera_id.backend : p.camera_backend)?.toLowerCase();
    const devicePath = p.descriptor?.device_path ?? p.camera_dev_path;
    const name = p.descriptor?.name ?? p.camera_name;
    let id: string;
    if (typeof p.camera_id === 'string') id = p.camera_id;
    else if (stable) id = cameraIdFromStableId(stable);
    else if (this.cameras.size === 1 && !devicePath) id = this.ids()[0]!;
    else throw new CommandError('invalid_payload', 'assign_device needs camera_id (a configured camera, or {backend, stable_id})', true, 'camera_id');
    const existing = this.cameras.get(id);
    if (existing?.recording) throw new CommandError('conflict', `camera ${id} is recording: stop the trial first`);
    // A device path without a backend is a V4L2 node; the seed's backends map onto source kinds.
    const source =
      backend === undefined
        ? devicePath
          ? 'v4l2'
          : (existing?.config.source ?? 'test')
        : backend === 'test'
          ? 'test'
          : /^(picam|csi|rpicam|libcamera)/.test(backend)
            ? 'rpicam'
            : 'v4l2';
    const cam = parsePayload(cameraSchema, { ...(existing?.config ?? {}), id, source, ...(name ? { name } : {}), ...(devicePath ? { device: devicePath } : {}) }, 'device');
    const rt = existing ?? this.newCamera(cam);
    const ready = await this.assignCamera(rt, cam, commandId);
    if (!existing) this.cameras.set(id, rt); // only a camera that works joins the box
    return ready;
  }

  /** Stop a camera's capture (its recording was stopped first) and report it released. */
  async release(rt: CameraRuntime): Promise<void> {
    await rt.unassign(3000);
    this.o.bus.report('device_released', { camera_id: rt.id, device_id: rt.id, port_released: true }, rt.id);
  }

  async applyConfig(p: z.infer<typeof applyConfigSchema>): Promise<{ camera_id: string; restarted: boolean; camera: DeviceReady }> {
    const rt = this.resolve(p.camera_id);
    if (rt.recording) throw new CommandError('conflict', `camera ${rt.id} is recording: apply_config is refused during a trial`);
    const { camera_id: _id, record, ...flat } = p;
    void _id;
    const changes = { ...flat, ...(record ?? {}) };
    parsePayload(cameraSchema, { ...rt.config, ...changes }, 'config');
    let res;
    try {
      res = await rt.applyConfig(changes);
    } catch (err) {
      const message = (err as Error).message;
      this.o.bus.report('device_error', { camera_id: rt.id, error: message, message }, rt.id);
      throw new CommandError('unavailable', `camera ${rt.id}: ${message} (previous settings kept)`);
    }
    this.o.bus.report('config_applied', { ...res.camera, restarted: res.restarted }, rt.id);
    return { camera_id: rt.id, restarted: res.restarted, camera: res.camera };
  }

  async control(ref: string | undefined, control: string, value: number | boolean | string): Promise<StatusDataMap['control_changed']> {
    const rt = this.resolve(ref);
    let res;
    try {
      res = await rt.controlChange(control, value);
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
    return this.list().map((c) => ({ ...c.describe(), ...c.telemetry(), armed: c.config.armed, last_error: c.lastError }));
  }

  /** Bytes/s that recording adds to the disk: the cameras given, or every armed camera (what a start would write). */
  writeRate(recording: readonly string[]): number {
    const cams = this.list().filter((c) => (recording.length ? recording.includes(c.id) : c.config.armed));
    return cams.reduce((n, c) => n + (c.stats()?.bytesPerSecond ?? 0), 0);
  }
}
