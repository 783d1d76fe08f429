import type { CameraConfig } from '../config/schema.ts';
import type { SourceSpec } from './source-spec.ts';
import { wallMinusMonoUs } from '../clock.ts';
import { testSourceSpec } from './test-source.ts';
import { v4l2SourceSpec } from './v4l2-source.ts';
import { rpicamSourceSpec, type RpicamEncoder, type RpicamSyncEvent } from './rpicam-source.ts';

export type ConcreteEncoder = 'copy' | 'h264_v4l2m2m' | 'libx264';

/**
 * The source process for a configured camera. `encoder` is the concrete choice made at assignment (see
 * cameras/encoder-choice); 'auto' here falls back to the safe software path.
 */
export interface SourceHooks {
  /** A sync camera's progress in the current run (rpicam only). */
  onSync?: (e: RpicamSyncEvent) => void;
  /** A triggered camera's run: the pipeline configuration file written for it (LIBCAMERA_RPI_CONFIG_FILE). */
  pipelineConfigFile?: string;
}

export function makeSourceSpec(cam: CameraConfig, encoder?: ConcreteEncoder, hooks: SourceHooks = {}): SourceSpec {
  switch (cam.source) {
    case 'test':
      return testSourceSpec({
        width: cam.width,
        height: cam.height,
        fps: cam.fps,
        gopSeconds: cam.gop_seconds,
        bitrateKbps: cam.bitrate_kbps,
        wallMinusMonoUs: wallMinusMonoUs(),
      });
    case 'v4l2': {
      if (typeof cam.device !== 'string') throw new Error(`camera ${cam.id}: v4l2 needs "device" (e.g. /dev/v4l/by-id/...)`);
      const enc = encoder ?? (cam.encoder !== 'auto' ? cam.encoder : cam.input_format === 'h264' ? 'copy' : 'libx264');
      return v4l2SourceSpec({
        device: cam.device,
        inputFormat: cam.input_format,
        width: cam.width,
        height: cam.height,
        fps: cam.fps,
        encoder: enc,
        gopSeconds: cam.gop_seconds,
        bitrateKbps: cam.bitrate_kbps,
      });
    }
    case 'rpicam': {
      const index = Number(cam.device ?? 0);
      if (!Number.isInteger(index) || index < 0) throw new Error(`camera ${cam.id}: rpicam needs "device" to be the camera index (0, 1, ...)`);
      // rpicam-vid encodes itself: hardware on a Pi 4 (when the encoder node exists), libx264 on a Pi 5.
      const enc: RpicamEncoder = encoder === 'h264_v4l2m2m' || encoder === 'libx264' ? encoder : 'libx264';
      return rpicamSourceSpec({
        camera: index,
        width: cam.width,
        height: cam.height,
        fps: cam.fps,
        gopSeconds: cam.gop_seconds,
        bitrateKbps: cam.bitrate_kbps,
        encoder: enc,
        controls: cam.rpicam,
        sync: cam.sync,
        onSync: hooks.onSync,
        triggered: cam.trigger ? { cameraTimeoutMs: cam.trigger.camera_timeout_ms, pipelineConfigFile: hooks.pipelineConfigFile ?? null } : undefined,
      });
    }
  }
}
