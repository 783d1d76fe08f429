/**
 * Output side shared by every ffmpeg-based source: H.264 in MPEG-TS on stdout, timestamps copied from the
 * input (the capture clock) rather than re-based at zero, frames passed one for one (no duplication or
 * dropping by ffmpeg), a fixed GOP so recordings can start on a keyframe, and packets flushed at once so
 * a frame reaches rigcam as soon as it is encoded.
 */
export interface EncodeOptions {
  encoder: 'copy' | 'h264_v4l2m2m' | 'libx264';
  fps: number;
  gopSeconds: number;
  bitrateKbps: number;
}

export function gopFrames(fps: number, gopSeconds: number): number {
  return Math.max(1, Math.round(fps * gopSeconds));
}

export function encodeArgs(o: EncodeOptions): string[] {
  const gop = String(gopFrames(o.fps, o.gopSeconds));
  const rate = `${o.bitrateKbps}k`;
  switch (o.encoder) {
    case 'copy':
      return ['-c:v', 'copy'];
    case 'h264_v4l2m2m':
      // The Pi 4 hardware encoder: GOP via -g, no B-frames; it needs yuv420p input.
      return ['-pix_fmt', 'yuv420p', '-c:v', 'h264_v4l2m2m', '-b:v', rate, '-g', gop, '-bf', '0'];
    case 'libx264':
      return [
        '-pix_fmt', 'yuv420p',
        '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency',
        '-b:v', rate, '-maxrate', rate, '-bufsize', `${o.bitrateKbps * 2}k`,
        '-g', gop, '-keyint_min', gop, '-sc_threshold', '0', '-bf', '0',
      ];
  }
}

/** Everything after the encoder: timestamps kept, 90 kHz encoder time base (no rounding to 1/fps), TS out. */
export function muxArgs(): string[] {
  return [
    '-fps_mode', 'passthrough',
    '-copyts',
    // Without this the TS muxer adds 2 x max_delay (1.4 s) to every timestamp.
    '-mpegts_copyts', '1',
    '-enc_time_base:v', '1/90000',
    '-flush_packets', '1',
    '-f', 'mpegts',
    'pipe:1',
  ];
}

export function ffmpegPreamble(): string[] {
  return ['-hide_banner', '-nostdin', '-nostats', '-loglevel', 'warning'];
}
