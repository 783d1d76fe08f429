import type { SourceSpec } from './source-spec.ts';
import { encodeArgs, ffmpegPreamble, muxArgs, type EncodeOptions } from './ffmpeg-common.ts';

export interface V4l2SourceOptions {
  device: string;
  /** ffmpeg's name of the camera's pixel format: mjpeg, h264, yuyv422, ... */
  inputFormat?: string;
  width: number;
  height: number;
  fps: number;
  encoder: EncodeOptions['encoder'];
  gopSeconds: number;
  bitrateKbps: number;
}

/**
 * A USB (UVC) camera through ffmpeg's v4l2 demuxer. `-ts default` keeps the kernel's buffer timestamps
 * (CLOCK_MONOTONIC for UVC) untouched and `-copyts` carries them into the PTS, so every frame's capture time
 * is the kernel's, on the same clock as GPIO edge events. Camera-native H.264 is copied, never re-encoded.
 */
export function v4l2SourceSpec(o: V4l2SourceOptions): SourceSpec {
  if (o.encoder === 'copy' && o.inputFormat && o.inputFormat !== 'h264')
    throw new Error(`encoder "copy" needs a camera that delivers H.264, not ${o.inputFormat}`);
  const input = [
    '-f', 'v4l2',
    '-thread_queue_size', '512',
    '-ts', 'default',
    ...(o.inputFormat ? ['-input_format', o.inputFormat] : []),
    '-video_size', `${o.width}x${o.height}`,
    '-framerate', String(o.fps),
    '-i', o.device,
  ];
  return {
    kind: 'v4l2',
    command: 'ffmpeg',
    args: [...ffmpegPreamble(), ...input, ...encodeArgs({ encoder: o.encoder, fps: o.fps, gopSeconds: o.gopSeconds, bitrateKbps: o.bitrateKbps }), ...muxArgs()],
    clock: 'monotonic',
    clockSource: 'v4l2-monotonic',
    fps: o.fps,
    width: o.width,
    height: o.height,
    encoder: o.encoder,
    device: o.device,
  };
}
