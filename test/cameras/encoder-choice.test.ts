import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  chooseEncoder, parseFfmpegEncoders, listFfmpegEncoders, findHardwareEncoderDevice,
} from '../../src/cameras/encoder-choice.ts';
import { V4L2_FIXTURES, fakeRootFromSystem, removeDir, tempDir } from './fake-box.ts';

const roots: string[] = [];
after(async () => {
  for (const r of roots) await removeDir(r);
});

test('chooseEncoder: copy native H.264, hardware encoder only with wrapper and device, else libx264', () => {
  const withM2m = ['libx264', 'h264_v4l2m2m'];
  assert.equal(chooseEncoder({ mode: { format: 'H264' }, ffmpegEncoders: withM2m, m2mDeviceExists: true }), 'copy');
  assert.equal(chooseEncoder({ mode: { format: 'MJPG' }, ffmpegEncoders: withM2m, m2mDeviceExists: true }), 'h264_v4l2m2m');
  assert.equal(chooseEncoder({ mode: { format: 'YUYV' }, ffmpegEncoders: withM2m, m2mDeviceExists: true }), 'h264_v4l2m2m');
  // Pi 5: ffmpeg built with the wrapper, but no encoder device.
  assert.equal(chooseEncoder({ mode: { format: 'MJPG' }, ffmpegEncoders: withM2m, m2mDeviceExists: false }), 'libx264');
  // Device present, ffmpeg without the wrapper.
  assert.equal(chooseEncoder({ mode: { format: 'MJPG' }, ffmpegEncoders: ['libx264'], m2mDeviceExists: true }), 'libx264');
  assert.equal(chooseEncoder({ mode: { format: 'H264' }, ffmpegEncoders: [], m2mDeviceExists: false, override: 'libx264' }), 'libx264');
  assert.equal(chooseEncoder({ mode: { format: 'MJPG' }, ffmpegEncoders: withM2m, m2mDeviceExists: true, override: 'auto' }), 'h264_v4l2m2m');
});

test('parseFfmpegEncoders reads names after the legend only', () => {
  const sample = [
    'Encoders:',
    ' V..... = Video',
    ' A..... = Audio',
    ' ------',
    ' V....D libx264              libx264 H.264 / AVC / MPEG-4 AVC / MPEG-4 part 10 (codec h264)',
    ' V..... h264_v4l2m2m         V4L2 mem2mem H.264 encoder wrapper (codec h264)',
    ' A....D aac                  AAC (Advanced Audio Coding)',
  ].join('\n');
  assert.deepEqual(parseFfmpegEncoders(sample), ['libx264', 'h264_v4l2m2m', 'aac']);
});

test('listFfmpegEncoders runs the real ffmpeg', async () => {
  const names = await listFfmpegEncoders();
  assert.ok(names.length > 20, `ffmpeg listed ${names.length} encoders`);
  assert.ok(names.includes('mjpeg'), 'every ffmpeg build has the mjpeg encoder');
  assert.ok(!names.includes('='), 'legend lines are not encoders');
  assert.deepEqual(await listFfmpegEncoders({ env: { ...process.env, PATH: '/nonexistent' } }), []);
});

test('hardware encoder found by name on a Pi 4 tree, not on a board without it', async () => {
  const pi4 = await fakeRootFromSystem(path.join(V4L2_FIXTURES, 'systems/raspi4-mainsailos'));
  roots.push(pi4);
  // video31 is bcm2835-codec-encode_image (JPEG), video11 the H.264 encoder.
  assert.equal(await findHardwareEncoderDevice(pi4), path.join(pi4, 'dev/video11'));
  const rk = await fakeRootFromSystem(path.join(V4L2_FIXTURES, 'systems/btt-pi2-rk3566'));
  roots.push(rk);
  assert.equal(await findHardwareEncoderDevice(rk), null);
  assert.equal(await findHardwareEncoderDevice(path.join(rk, 'missing')), null);
});

test('hardware encoder is found by name wherever it is numbered', async () => {
  const root = await tempDir('renumbered');
  roots.push(root);
  for (const [node, name] of [['video3', 'bcm2835-codec-decode'], ['video4', 'bcm2835-codec-encode']]) {
    await mkdir(path.join(root, 'sys/class/video4linux', node), { recursive: true });
    await writeFile(path.join(root, 'sys/class/video4linux', node, 'name'), `${name}\n`);
  }
  assert.equal(await findHardwareEncoderDevice(root), path.join(root, 'dev/video4'));
});
