import assert from 'node:assert/strict';
import { chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { silentLogger } from '../../src/log/logger.ts';
import { makeSourceSpec } from '../../src/sources/make-spec.ts';
import type { SourceSpec } from '../../src/sources/source-spec.ts';
import { SourceSupervisor, type SourceExit } from '../../src/sources/supervisor.ts';
import { testSourceSpec } from '../../src/sources/test-source.ts';
import { v4l2SourceSpec } from '../../src/sources/v4l2-source.ts';
import { cameraSchema } from '../../src/config/schema.ts';
import { tmpDir } from '../helpers/tmp.ts';

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

describe('source supervisor', () => {
  const bin = tmpDir();
  function standin(name: string, script: string): void {
    const p = path.join(bin, name);
    writeFileSync(p, `#!/bin/sh\n${script}\n`);
    chmodSync(p, 0o755);
  }
  const spec = (command: string, device?: string): SourceSpec => ({
    kind: 'v4l2', command, args: [], clock: 'monotonic', fps: 30, width: 640, height: 480, encoder: 'libx264', device,
  });

  function nextExit(s: SourceSupervisor): Promise<SourceExit> {
    return new Promise((r) => s.once('exit', r));
  }

  it('reports a missing ffmpeg clearly and keeps retrying with growing back-off', async () => {
    const s = new SourceSupervisor('cam0', () => spec(path.join(bin, 'no-such-ffmpeg')), { initialMs: 20, maxMs: 80, healthyAfterMs: 10_000 }, silentLogger());
    s.start();
    const e1 = await nextExit(s);
    assert.equal(e1.problem, 'missing_command');
    assert.match(e1.message, /not installed/);
    assert.equal(e1.restartInMs, 20);
    const e2 = await nextExit(s);
    assert.equal(e2.restartInMs, 40);
    const e3 = await nextExit(s);
    assert.equal(e3.restartInMs, 80);
    const e4 = await nextExit(s);
    assert.equal(e4.restartInMs, 80, 'back-off is capped');
    await s.stop();
  });

  it('reports a missing device without starting the process', async () => {
    const s = new SourceSupervisor('cam0', () => spec('sh', '/dev/video-nonexistent-9'), { initialMs: 1000, maxMs: 1000, healthyAfterMs: 1000 }, silentLogger());
    s.start();
    const e = await nextExit(s);
    assert.equal(e.problem, 'missing_device');
    assert.match(e.message, /\/dev\/video-nonexistent-9 does not exist/);
    await s.stop();
  });

  it('keeps stderr, classifies a busy device, and restarts a process that exits', async () => {
    standin('busyff', 'echo "[video4linux2,v4l2 @ 0x1] ioctl(VIDIOC_STREAMON): Device or resource busy" >&2; exit 1');
    const s = new SourceSupervisor('cam0', () => spec(path.join(bin, 'busyff'), '/dev/null'), { initialMs: 30, maxMs: 100, healthyAfterMs: 10_000 }, silentLogger());
    const started: number[] = [];
    s.on('started', (x) => started.push(x.run));
    s.start();
    const e = await nextExit(s);
    assert.equal(e.problem, 'busy_device');
    assert.equal(e.code, 1);
    assert.match(e.stderrTail.join('\n'), /VIDIOC_STREAMON/);
    await nextExit(s);
    assert.deepEqual(started, [1, 2]);
    await s.stop();
  });

  it('sees the exit even when a grandchild keeps the output pipes open', async () => {
    standin('wrapper', 'sleep 4 & exit 3');
    const s = new SourceSupervisor('cam0', () => spec(path.join(bin, 'wrapper')), { initialMs: 5000, maxMs: 5000, healthyAfterMs: 10_000 }, silentLogger());
    const t0 = Date.now();
    s.start();
    const e = await nextExit(s);
    assert.equal(e.code, 3);
    assert.ok(Date.now() - t0 < 3000, `exit seen after ${Date.now() - t0} ms`);
    await s.stop();
  });

  it('stop() ends a running process (SIGINT, then SIGKILL) and does not restart it', async () => {
    standin('stubborn', 'trap "" INT; while true; do sleep 0.05; done');
    const s = new SourceSupervisor('cam0', () => spec(path.join(bin, 'stubborn')), { initialMs: 10, maxMs: 10, healthyAfterMs: 10_000 }, silentLogger());
    s.start();
    await new Promise((r) => s.once('started', r));
    const t0 = Date.now();
    await s.stop(300);
    assert.ok(Date.now() - t0 < 3000, 'Date.now() - t0 < 3000');
    assert.equal(s.running, false);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(s.running, false, 'not restarted after stop');
  });
});
