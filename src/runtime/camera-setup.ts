import { existsSync } from 'node:fs';
import type { CameraConfig } from '../config/schema.ts';
import type { Logger } from '../log/logger.ts';
import { chooseEncoder, findHardwareEncoderDevice, listFfmpegEncoders } from '../cameras/encoder-choice.ts';
import { buildProbeResult, type ProbeResult } from '../cameras/probe.ts';
import { runTool } from '../cameras/run-tool.ts';
import { parseListCtrls, type V4l2Control } from '../cameras/v4l2-controls.ts';
import { discoverCsiCameras } from '../cameras/discovery.ts';
import type { ConcreteEncoder } from '../sources/make-spec.ts';
import { rpicamEncoderFor } from '../sources/rpicam-source.ts';

/** What a camera offers: its modes, default record and preview modes, controls. */
export interface Capabilities {
  modes: ProbeResult['modes'];
  default_record: ProbeResult['default_record'];
  default_preview: ProbeResult['default_preview'];
  controls: ProbeResult['controls'];
}

export interface Probed {
  caps: Capabilities;
  controls: V4l2Control[];
  /** A CSI camera as libcamera lists it: the sensor (its driver's name) and the path it is registered by. */
  csi?: { sensor: string; path: string };
}

/** ffmpeg's -input_format name of a V4L2 fourcc. */
const FFMPEG_INPUT_FORMAT: Record<string, string> = { MJPG: 'mjpeg', JPEG: 'mjpeg', H264: 'h264', YUYV: 'yuyv422', UYVY: 'uyvy422', NV12: 'nv12', YU12: 'yuv420p', GREY: 'gray' };

/** A camera's capabilities: v4l2-ctl for USB cameras, rpicam-hello for CSI, the configured mode for the test source. */
export async function probeCamera(cam: CameraConfig, log: Logger): Promise<Probed> {
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
      log.warn({ camera: cam.id }, 'v4l2-ctl not installed: using the configured mode without probing');
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
  return { caps: { modes, default_record: mode, default_preview: mode, controls: [] }, controls: [], csi: { sensor: csi.camera.sensor, path: csi.camera.path } };
}

/** The controls the driver holds now (after a change), or null when they cannot be read. */
export async function readControls(device: string): Promise<{ controls: V4l2Control[]; caps: Capabilities['controls'] } | null> {
  const r = await runTool('v4l2-ctl', ['-d', device, '--list-ctrls-menus']);
  if (!r.found || r.exitCode !== 0) return null;
  return { controls: parseListCtrls(r.stdout), caps: buildProbeResult('', r.stdout).controls };
}

/** The probed mode matching the camera's configured size, rate and input format, or undefined. */
export function offeredMode(cam: Pick<CameraConfig, 'width' | 'height' | 'fps' | 'input_format'>, caps: Capabilities): Capabilities['modes'][number] | undefined {
  const wanted = cam.input_format;
  return caps.modes.find(
    (m) => m.width === cam.width && m.height === cam.height && (m.fps.length === 0 || m.fps.some((f) => Math.abs(f - cam.fps) < 0.01)) && (!wanted || FFMPEG_INPUT_FORMAT[m.format] === wanted),
  );
}

/**
 * Keep the configured mode when the camera offers it; otherwise the probed default record mode. `useDefault`: the
 * camera has no configured mode (a host assigned it and no YAML entry matches), so the default record mode it is.
 */
export function pickMode(cam: CameraConfig, caps: Capabilities, log: Logger, useDefault = false): CameraConfig {
  if (cam.source !== 'v4l2' || !caps.modes.length) return cam;
  const d = caps.default_record;
  if (useDefault && d) return { ...cam, width: d.width, height: d.height, fps: d.fps, input_format: FFMPEG_INPUT_FORMAT[d.format] ?? cam.input_format };
  const offered = offeredMode(cam, caps);
  if (offered) return { ...cam, input_format: cam.input_format ?? FFMPEG_INPUT_FORMAT[offered.format] ?? cam.input_format };
  if (!d) throw new Error(`camera ${cam.id} offers no usable capture mode`);
  log.warn({ camera: cam.id, configured: `${cam.width}x${cam.height}@${cam.fps}`, using: d }, 'configured mode not offered by the camera; using its default record mode');
  return { ...cam, width: d.width, height: d.height, fps: d.fps, input_format: FFMPEG_INPUT_FORMAT[d.format] ?? cam.input_format };
}

export async function pickEncoder(cam: CameraConfig): Promise<ConcreteEncoder | undefined> {
  if (cam.source === 'rpicam')
    return cam.encoder === 'libx264' || cam.encoder === 'h264_v4l2m2m' ? cam.encoder : rpicamEncoderFor(await findHardwareEncoderDevice().catch(() => null));
  if (cam.source !== 'v4l2') return undefined;
  const [encoders, m2m] = await Promise.all([listFfmpegEncoders().catch(() => [] as string[]), findHardwareEncoderDevice().catch(() => null)]);
  const format = cam.input_format === 'h264' ? 'H264' : cam.input_format === 'mjpeg' ? 'MJPG' : 'YUYV';
  return chooseEncoder({ mode: { format }, ffmpegEncoders: encoders, m2mDeviceExists: m2m !== null, override: cam.encoder }) as ConcreteEncoder;
}

/** Which changes need a new source process. */
export function needsRestart(a: CameraConfig, b: CameraConfig): boolean {
  const keys: Array<keyof CameraConfig> = ['source', 'device', 'input_format', 'width', 'height', 'fps', 'encoder', 'gop_seconds', 'bitrate_kbps'];
  // rpicam-vid takes its controls and --sync role only on its command line.
  return (
    keys.some((k) => a[k] !== b[k]) ||
    a.sync !== b.sync ||
    JSON.stringify(a.rpicam ?? {}) !== JSON.stringify(b.rpicam ?? {}) ||
    JSON.stringify(a.trigger ?? null) !== JSON.stringify(b.trigger ?? null)
  );
}
