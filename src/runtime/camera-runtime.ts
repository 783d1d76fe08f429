import { existsSync } from 'node:fs';
import type { CameraConfig, Config } from '../config/schema.ts';
import { cameraSchema } from '../config/schema.ts';
import type { Logger } from '../log/logger.ts';
import { CameraPipeline, firstKeyframe } from '../pipeline/camera-pipeline.ts';
import { CameraRecorder } from '../recording/camera-recorder.ts';
import type { Store } from '../storage/store.ts';
import { makeSourceSpec, type ConcreteEncoder } from '../sources/make-spec.ts';
import type { SourceExit } from '../sources/supervisor.ts';
import { chooseEncoder, findHardwareEncoderDevice, listFfmpegEncoders } from '../cameras/encoder-choice.ts';
import { buildProbeResult, type ProbeResult } from '../cameras/probe.ts';
import { runTool } from '../cameras/run-tool.ts';
import { parseListCtrls, type V4l2Control } from '../cameras/v4l2-controls.ts';
import { setControl } from '../cameras/controls.ts';
import { monoNowUs } from '../clock.ts';
import { discoverCsiCameras } from '../cameras/discovery.ts';
import { rpicamEncoderFor } from '../sources/rpicam-source.ts';

export type CameraState = 'unassigned' | 'starting' | 'ready' | 'error';

export interface Capabilities {
  modes: ProbeResult['modes'];
  default_record: ProbeResult['default_record'];
  default_preview: ProbeResult['default_preview'];
  controls: ProbeResult['controls'];
}

export interface DeviceReady {
  camera_id: string;
  name: string;
  resolution: string;
  fps: number;
  encoder: string;
  source: string;
  device: string | null;
}

/** ffmpeg's -input_format name of a V4L2 fourcc. */
const FFMPEG_INPUT_FORMAT: Record<string, string> = { MJPG: 'mjpeg', JPEG: 'mjpeg', H264: 'h264', YUYV: 'yuyv422', UYVY: 'uyvy422', NV12: 'nv12', YU12: 'yuv420p', GREY: 'gray' };

/** What it takes to probe and run a camera; shared by every camera of a box. */
export interface CameraEnv {
  config: Config;
  store: Store;
  log: Logger;
  /** Called on source exits and restarts (for statuses and the journal). */
  onSourceExit: (cameraId: string, e: SourceExit) => void;
  onSourceStarted: (cameraId: string, run: number) => void;
  /** The camera delivers video again after its device was lost (replugged). */
  onDeviceBack: (cameraId: string) => void;
}

/**
 * One camera of the box (the seed's CamerasRuntime): probing, mode and encoder choice, its continuous capture
 * pipeline and its recorder. Assignment builds the new pipeline beside the old one and swaps only once the new
 * one delivers video, so a failed assign leaves the previous state intact.
 */
export class CameraRuntime {
  state: CameraState = 'unassigned';
  cam: CameraConfig;
  capabilities: Capabilities | null = null;
  pipeline: CameraPipeline | null = null;
  recorder: CameraRecorder | null = null;
  encoder: string | null = null;
  lastError: string | null = null;
  private v4l2Controls: V4l2Control[] = [];

  constructor(
    cam: CameraConfig,
    private readonly env: CameraEnv,
  ) {
    this.cam = cam;
  }

  get id(): string {
    return this.cam.id;
  }

  get recording(): boolean {
    return this.recorder?.active ?? false;
  }

  /** Probe, choose mode and encoder, start the source and wait for its first keyframe. */
  async assign(cam: CameraConfig = this.cam, timeoutMs = 15_000): Promise<DeviceReady> {
    if (this.recording) throw new Error(`camera ${cam.id} is recording: stop the trial first`);
    let pipeline: CameraPipeline | null = null;
    let probed: { caps: Capabilities; controls: V4l2Control[] };
    let effective: CameraConfig;
    let spec: ReturnType<typeof makeSourceSpec>;
    try {
      probed = await this.probe(cam);
      effective = this.pickMode(cam, probed.caps);
      const encoder = await this.pickEncoder(effective);
      spec = makeSourceSpec(effective, encoder); // validates the combination before anything starts
      pipeline = this.newPipeline(effective, encoder);
      if (!this.pipeline) this.state = 'starting';
      pipeline.start();
      await firstKeyframe(pipeline, timeoutMs);
    } catch (err) {
      await pipeline?.stop();
      // A camera that was running keeps running as it was; one that was not is now in error, with the reason.
      if (!this.pipeline) {
        this.state = 'error';
        this.lastError = (err as Error).message;
      }
      throw err;
    }
    const old = this.pipeline;
    this.pipeline = pipeline;
    this.recorder = new CameraRecorder(pipeline, {
      store: this.env.store,
      log: this.env.log,
      fsyncIntervalMs: this.env.config.recording.fsync_interval_ms,
      stopWaitMs: this.env.config.recording.stop_wait_ms,
    });
    this.cam = effective;
    this.capabilities = probed.caps;
    this.v4l2Controls = probed.controls;
    this.encoder = spec.encoder;
    this.state = 'ready';
    this.lastError = null;
    if (old) await old.stop();
    this.env.store.upsertCamera({ id: cam.id, name: cam.name ?? cam.id, backend: cam.source, devicePath: typeof cam.device === 'string' ? cam.device : null });
    return this.describe();
  }

  describe(): DeviceReady {
    return {
      camera_id: this.cam.id,
      name: this.cam.name ?? this.cam.id,
      resolution: `${this.cam.width}x${this.cam.height}`,
      fps: this.cam.fps,
      encoder: this.encoder ?? 'none',
      source: this.cam.source,
      device: typeof this.cam.device === 'string' ? this.cam.device : null,
    };
  }

  /** Stop capture within a bounded time. The caller stops a recording first. */
  async unassign(timeoutMs = 3000): Promise<void> {
    const p = this.pipeline;
    this.pipeline = null;
    this.recorder = null;
    this.state = 'unassigned';
    if (p) await p.stop(timeoutMs);
  }

  /** Which changes need a new source process. */
  static needsRestart(a: CameraConfig, b: CameraConfig): boolean {
    const keys: Array<keyof CameraConfig> = ['source', 'device', 'input_format', 'width', 'height', 'fps', 'encoder', 'gop_seconds', 'bitrate_kbps'];
    return keys.some((k) => a[k] !== b[k]);
  }

  async applyConfig(changes: Partial<CameraConfig>): Promise<{ restarted: boolean; camera: DeviceReady }> {
    const next = cameraSchema.parse({ ...this.cam, ...changes });
    if (this.pipeline && CameraRuntime.needsRestart(this.cam, next)) {
      await this.assign(next);
      return { restarted: true, camera: this.describe() };
    }
    this.cam = next;
    return { restarted: false, camera: this.describe() };
  }

  async controlChange(name: string, value: number | boolean | string): Promise<{ control: string; value: number }> {
    if (this.cam.source !== 'v4l2' || typeof this.cam.device !== 'string') throw new Error(`camera ${this.id} has no adjustable controls (source ${this.cam.source})`);
    const control = this.v4l2Controls.find((c) => c.name === name);
    if (!control) throw new Error(`camera ${this.id} has no control "${name}"${this.v4l2Controls.length ? ` (it has: ${this.v4l2Controls.map((c) => c.name).join(', ')})` : ''}`);
    const res = await setControl(this.cam.device, name, value, { control });
    if (!res.ok) throw new Error(res.error ?? `v4l2-ctl failed: ${res.stderr}`);
    // Read back so the status and the web page show what the driver actually holds.
    await this.refreshControls();
    const now = this.v4l2Controls.find((c) => c.name === name);
    return { control: name, value: now?.value ?? Number(value) };
  }

  async reprobe(): Promise<Capabilities> {
    const probed = await this.probe(this.cam);
    this.capabilities = probed.caps;
    this.v4l2Controls = probed.controls;
    return probed.caps;
  }

  private async refreshControls(): Promise<void> {
    if (typeof this.cam.device !== 'string') return;
    const r = await runTool('v4l2-ctl', ['-d', this.cam.device, '--list-ctrls-menus']);
    if (r.found && r.exitCode === 0) {
      this.v4l2Controls = parseListCtrls(r.stdout);
      if (this.capabilities) this.capabilities.controls = buildProbeResult('', r.stdout).controls;
    }
  }

  private async probe(cam: CameraConfig): Promise<{ caps: Capabilities; controls: V4l2Control[] }> {
    if (cam.source === 'test') {
      const mode = { format: 'TEST', width: cam.width, height: cam.height, fps: cam.fps };
      return { caps: { modes: [{ ...mode, fps: [cam.fps] }], default_record: mode, default_preview: mode, controls: [] }, controls: [] };
    }
    if (cam.source === 'v4l2') {
      if (typeof cam.device !== 'string') throw new Error(`camera ${cam.id}: v4l2 needs "device"`);
      if (!existsSync(cam.device)) throw new Error(`camera device ${cam.device} does not exist (unplugged?)`);
      const [formats, ctrls] = await Promise.all([
        runTool('v4l2-ctl', ['-d', cam.device, '--list-formats-ext']),
        runTool('v4l2-ctl', ['-d', cam.device, '--list-ctrls-menus']),
      ]);
      if (!formats.found) {
        // Without v4l2-utils the configured mode is used as is; the doctor says how to install it.
        this.env.log.warn({ camera: cam.id }, 'v4l2-ctl not installed: using the configured mode without probing');
        const mode = { format: (cam.input_format ?? 'mjpeg').toUpperCase(), width: cam.width, height: cam.height, fps: cam.fps };
        return { caps: { modes: [], default_record: mode, default_preview: null, controls: [] }, controls: [] };
      }
      if (formats.exitCode !== 0) throw new Error(`cannot probe ${cam.device}: ${formats.stderr.trim() || `v4l2-ctl exit ${formats.exitCode}`}`);
      const result = buildProbeResult(formats.stdout, ctrls.stdout, { targetFps: cam.fps });
      return { caps: result, controls: parseListCtrls(ctrls.stdout) };
    }
    // CSI: the sensor's modes from rpicam-hello --list-cameras; rpicam-vid scales to the configured size.
    const index = Number(cam.device ?? 0);
    const csi = (await discoverCsiCameras()).find((c) => c.index === index);
    if (!csi) throw new Error(`no CSI camera ${index} (rpicam-hello --list-cameras lists none with that index; is rpicam-apps installed and the camera connected?)`);
    const modes = csi.camera.modes.map((m) => ({ format: m.format, width: m.width, height: m.height, fps: m.fps }));
    const mode = { format: 'H264', width: cam.width, height: cam.height, fps: cam.fps };
    return { caps: { modes, default_record: mode, default_preview: mode, controls: [] }, controls: [] };
  }

  /** Keep the configured mode when the camera offers it; otherwise the probed default record mode. */
  private pickMode(cam: CameraConfig, caps: Capabilities): CameraConfig {
    if (cam.source !== 'v4l2' || !caps.modes.length) return cam;
    const wanted = cam.input_format;
    const offered = caps.modes.find(
      (m) => m.width === cam.width && m.height === cam.height && (m.fps.length === 0 || m.fps.some((f) => Math.abs(f - cam.fps) < 0.01)) && (!wanted || FFMPEG_INPUT_FORMAT[m.format] === wanted),
    );
    if (offered) return { ...cam, input_format: wanted ?? FFMPEG_INPUT_FORMAT[offered.format] ?? cam.input_format };
    const d = caps.default_record;
    if (!d) throw new Error(`camera ${cam.id} offers no usable capture mode`);
    this.env.log.warn({ camera: cam.id, configured: `${cam.width}x${cam.height}@${cam.fps}`, using: d }, 'configured mode not offered by the camera; using its default record mode');
    return { ...cam, width: d.width, height: d.height, fps: d.fps, input_format: FFMPEG_INPUT_FORMAT[d.format] ?? cam.input_format };
  }

  private async pickEncoder(cam: CameraConfig): Promise<ConcreteEncoder | undefined> {
    if (cam.source === 'rpicam')
      return cam.encoder === 'libx264' || cam.encoder === 'h264_v4l2m2m' ? cam.encoder : rpicamEncoderFor(await findHardwareEncoderDevice().catch(() => null));
    if (cam.source !== 'v4l2') return undefined;
    const [encoders, m2m] = await Promise.all([listFfmpegEncoders().catch(() => [] as string[]), findHardwareEncoderDevice().catch(() => null)]);
    const format = cam.input_format === 'h264' ? 'H264' : cam.input_format === 'mjpeg' ? 'MJPG' : 'YUYV';
    return chooseEncoder({ mode: { format }, ffmpegEncoders: encoders, m2mDeviceExists: m2m !== null, override: cam.encoder }) as ConcreteEncoder;
  }

  private newPipeline(cam: CameraConfig, encoder: ConcreteEncoder | undefined): CameraPipeline {
    const cfg = this.env.config;
    const p = new CameraPipeline(cam.id, () => makeSourceSpec(cam, encoder), {
      backoff: { initialMs: cfg.supervisor.restart_initial_ms, maxMs: cfg.supervisor.restart_max_ms, healthyAfterMs: cfg.supervisor.healthy_after_ms },
      ringWindowUs: (cfg.recording.preroll_seconds + 2 * cam.gop_seconds + 1) * 1e6,
      ringMaxBytes: cfg.recording.preroll_max_mb * 1024 * 1024,
      log: this.env.log,
    });
    p.on('exit', (e) => {
      if (this.pipeline === p) {
        this.lastError = e.message;
        if (e.problem === 'missing_device') this.state = 'error';
        this.env.onSourceExit(cam.id, e);
      }
    });
    // A lost device that comes back (same stable path) is re-assigned by itself: the supervisor kept retrying.
    p.on('frame', (f) => {
      if (this.pipeline === p && this.state === 'error' && f.au.keyframe) {
        this.state = 'ready';
        this.lastError = null;
        this.env.onDeviceBack(cam.id);
      }
    });
    p.on('started', (s) => {
      if (this.pipeline === p) this.env.onSourceStarted(cam.id, s.run);
    });
    return p;
  }

  telemetry(): Record<string, unknown> {
    const st = this.pipeline?.stats();
    const cur = this.recorder?.current ?? null;
    return {
      camera_id: this.id,
      state: this.state,
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
