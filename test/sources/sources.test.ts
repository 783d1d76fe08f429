import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { makeSourceSpec } from '../../src/sources/make-spec.ts';
import { testSourceSpec } from '../../src/sources/test-source.ts';
import { v4l2SourceSpec } from '../../src/sources/v4l2-source.ts';
import { cameraSchema } from '../../src/config/schema.ts';

function argValue(args: string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
}

describe('v4l2 source arguments', () => {
  const base = { device: '/dev/video0', width: 1920, height: 1080, fps: 30, gopSeconds: 1, bitrateKbps: 6000 };

  it('MJPEG camera with the Pi hardware encoder: kernel timestamps kept, passthrough, fixed GOP', () => {
    const s = v4l2SourceSpec({ ...base, inputFormat: 'mjpeg', encoder: 'h264_v4l2m2m' });
    const a = s.args;
    assert.equal(s.command, 'ffmpeg');
    assert.equal(argValue(a, '-f'), 'v4l2');
    assert.equal(argValue(a, '-ts'), 'default');
    assert.equal(argValue(a, '-input_format'), 'mjpeg');
    assert.equal(argValue(a, '-video_size'), '1920x1080');
    assert.equal(argValue(a, '-framerate'), '30');
    assert.equal(argValue(a, '-i'), '/dev/video0');
    assert.ok(a.includes('-copyts'), 'a.includes(-copyts)');
    assert.equal(argValue(a, '-mpegts_copyts'), '1');
    assert.equal(argValue(a, '-fps_mode'), 'passthrough');
    assert.equal(argValue(a, '-c:v'), 'h264_v4l2m2m');
    assert.equal(argValue(a, '-g'), '30');
    assert.equal(argValue(a, '-b:v'), '6000k');
    assert.equal(a.at(-1), 'pipe:1');
    assert.equal(argValue(a, '-f', ), 'v4l2');
    assert.equal(a[a.indexOf('pipe:1') - 1], 'mpegts');
    // Input options come before -i, output options after.
    assert.ok(a.indexOf('-input_format') < a.indexOf('-i') && a.indexOf('-c:v') > a.indexOf('-i'), 'a.indexOf(-input_format) < a.indexOf(-i) && a.indexOf(-c:v) ');
    assert.equal(s.device, '/dev/video0');
    assert.equal(s.clock, 'monotonic');
  });

  it('camera-native H.264 is copied, never re-encoded', () => {
    const s = v4l2SourceSpec({ ...base, inputFormat: 'h264', encoder: 'copy' });
    assert.equal(argValue(s.args, '-c:v'), 'copy');
    assert.ok(!s.args.includes('libx264'), '!s.args.includes(libx264)');
    assert.ok(!s.args.includes('-pix_fmt'), '!s.args.includes(-pix_fmt)');
    assert.throws(() => v4l2SourceSpec({ ...base, inputFormat: 'mjpeg', encoder: 'copy' }), /needs a camera that delivers H.264/);
  });

  it('software fallback: libx264 ultrafast, no B-frames, keyframes exactly every GOP', () => {
    const s = v4l2SourceSpec({ ...base, fps: 60, gopSeconds: 0.5, inputFormat: 'yuyv422', encoder: 'libx264' });
    const a = s.args;
    assert.equal(argValue(a, '-c:v'), 'libx264');
    assert.equal(argValue(a, '-preset'), 'ultrafast');
    assert.equal(argValue(a, '-bf'), '0');
    assert.equal(argValue(a, '-g'), '30');
    assert.equal(argValue(a, '-keyint_min'), '30');
    assert.equal(argValue(a, '-sc_threshold'), '0');
  });

  it('auto encoder from the config: h264 input is copied, others software-encoded', () => {
    const cam = (o: object) => cameraSchema.parse({ id: 'c', source: 'v4l2', device: '/dev/video2', ...o });
    assert.equal(makeSourceSpec(cam({ input_format: 'h264' })).encoder, 'copy');
    assert.equal(makeSourceSpec(cam({ input_format: 'mjpeg' })).encoder, 'libx264');
    assert.equal(makeSourceSpec(cam({ input_format: 'mjpeg' }), 'h264_v4l2m2m').encoder, 'h264_v4l2m2m');
    assert.throws(() => makeSourceSpec(cameraSchema.parse({ id: 'c', source: 'v4l2' })), /needs "device"/);
  });

  it('test source stamps frames on the monotonic clock', () => {
    const s = testSourceSpec({ width: 320, height: 240, fps: 25, gopSeconds: 1, bitrateKbps: 500, wallMinusMonoUs: 123 });
    assert.match(argValue(s.args, '-vf')!, /setpts=\(RTCSTART-123\)\/\(TB\*1000000\)\+N\/\(FRAME_RATE\*TB\)/);
    assert.equal(argValue(s.args, '-i'), 'testsrc2=size=320x240:rate=25');
    assert.ok(s.args.includes('-re'), 's.args.includes(-re)');
  });
});
