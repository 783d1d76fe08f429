import type { SourceSpec } from './source-spec.ts';
import { encodeArgs, ffmpegPreamble, muxArgs } from './ffmpeg-common.ts';

export interface TestSourceOptions {
  width: number;
  height: number;
  fps: number;
  gopSeconds: number;
  bitrateKbps: number;
  /** Wall-clock minus monotonic, in microseconds, measured just before spawning. */
  wallMinusMonoUs: number;
}

/**
 * ffmpeg's lavfi test pattern, paced in real time (-re), stamped like a camera: the PTS of frame N is the
 * CLOCK_MONOTONIC time the filter graph started (RTCSTART converted with the wall/mono offset measured at
 * spawn) plus N frame periods. So the test source runs the exact same path as a V4L2 camera whose kernel
 * buffer timestamps are CLOCK_MONOTONIC.
 */
export function testSourceSpec(o: TestSourceOptions): SourceSpec {
  const off = Math.round(o.wallMinusMonoUs);
  const pattern = `testsrc2=size=${o.width}x${o.height}:rate=${o.fps}`;
  const stamp = `settb=1/90000,setpts=(RTCSTART-${off})/(TB*1000000)+N/(FRAME_RATE*TB)`;
  return {
    kind: 'test',
    command: 'ffmpeg',
    args: [
      ...ffmpegPreamble(),
      '-re', '-f', 'lavfi', '-i', pattern,
      '-vf', stamp,
      ...encodeArgs({ encoder: 'libx264', fps: o.fps, gopSeconds: o.gopSeconds, bitrateKbps: o.bitrateKbps }),
      ...muxArgs(),
    ],
    clock: 'monotonic',
    clockSource: 'synthetic',
    fps: o.fps,
    width: o.width,
    height: o.height,
    encoder: 'libx264',
  };
}

