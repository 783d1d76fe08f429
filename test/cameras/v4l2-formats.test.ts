import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseListFormatsExt } from '../../src/cameras/v4l2-formats.ts';
import { modesFromFormats } from '../../src/cameras/modes.ts';
import { V4L2_FIXTURES } from './fake-box.ts';

const read = (rel: string): string => readFileSync(path.join(V4L2_FIXTURES, rel), 'utf8');

test('current layout (Logitech C922): formats, sizes and discrete intervals', () => {
  const formats = parseListFormatsExt(read('logitech-c922/list-formats-ext.txt'));
  assert.deepEqual(formats.map((f) => [f.fourcc, f.compressed]), [['YUYV', false], ['MJPG', true]]);
  assert.equal(formats[1]?.description, 'Motion-JPEG');
  assert.equal(formats.reduce((n, f) => n + f.sizes.length, 0), 36);
  const mjpg1080 = formats[1]?.sizes.find((s) => s.kind === 'discrete' && s.width === 1920 && s.height === 1080);
  assert.deepEqual(mjpg1080?.intervals.map((i) => (i.kind === 'discrete' ? i.fps : -1)), [30, 24, 20, 15, 10, 7.5, 5]);
  const yuyv1080 = formats[0]?.sizes.find((s) => s.kind === 'discrete' && s.width === 1920);
  assert.deepEqual(yuyv1080?.intervals, [{ kind: 'discrete', fps: 5 }]);
});

test('driver-info header before the listing (v4l2-ctl -D) is ignored (ELP 4K)', () => {
  const modes = modesFromFormats(parseListFormatsExt(read('elp-4k-hd-usb-camera/list-formats-ext.txt')));
  assert.equal(modes.length, 22);
  assert.deepEqual(modes[0], { format: 'MJPG', width: 3840, height: 2160, fps: [30, 25, 20, 15, 10, 5] });
  assert.deepEqual(modes.find((m) => m.format === 'YUYV' && m.width === 3840)?.fps, [1]);
  assert.deepEqual(modes.find((m) => m.format === 'YUYV' && m.width === 1920)?.fps, [3]);
});

test('space-indented paste (ELP stereo on a Pi 5) parses like tabs', () => {
  const modes = modesFromFormats(parseListFormatsExt(read('elp-stereo-3d-usb-camera/list-formats-ext.txt')));
  assert.deepEqual(
    modes.map((m) => `${m.format} ${m.width}x${m.height} ${m.fps[0]}`),
    [
      'MJPG 3200x1200 60', 'MJPG 2560x720 60', 'MJPG 1600x600 120', 'MJPG 1280x480 120', 'MJPG 640x240 120',
      'YUYV 3200x1200 2', 'YUYV 2560x720 2', 'YUYV 1600x600 10', 'YUYV 1280x480 15', 'YUYV 640x240 60',
    ],
  );
});

test('sizes and intervals a camera lists twice are merged (generic H.264 webcam, Arducam)', () => {
  const web = modesFromFormats(parseListFormatsExt(read('generic-webcam-h264-yg-u700/list-formats-ext.txt')));
  const h264 = web.filter((m) => m.format === 'H264');
  assert.equal(h264.length, 10, 'ten distinct H.264 sizes although five are listed twice');
  assert.deepEqual(h264.find((m) => m.width === 320)?.fps, [30, 25]);
  const ardu = modesFromFormats(parseListFormatsExt(read('arducam-1080p-uvc/list-formats-ext.txt')));
  assert.deepEqual(ardu.map((m) => `${m.format} ${m.width}x${m.height} ${m.fps.join('/')}`), [
    'MJPG 1920x1080 30', 'MJPG 1280x720 30', 'MJPG 640x480 30', 'MJPG 320x240 30', 'YUYV 640x480 30', 'YUYV 320x240 30',
  ]);
});

test('older layout (Index/Type/Pixel Format/Name), tab indented (Kodak PIXPRO)', () => {
  const formats = parseListFormatsExt(read('kodak-pixpro-4k/list-formats-ext.txt'));
  assert.equal(formats.length, 1);
  assert.deepEqual({ fourcc: formats[0]?.fourcc, compressed: formats[0]?.compressed, description: formats[0]?.description }, {
    fourcc: 'MJPG',
    compressed: true,
    description: 'Motion-JPEG',
  });
  const modes = modesFromFormats(formats);
  assert.deepEqual(modes.map((m) => `${m.width}x${m.height}:${m.fps.join('/')}`), [
    '3840x2160:5', '2880x2880:5', '2048x2048:5', '1440x1440:15/5', '1920x1080:15/5', '1280x720:30/15/5', '640x360:30/15/5',
  ]);
});

test('older layout without intervals (Microdia, gspca) gives modes with unknown rate', () => {
  const modes = modesFromFormats(parseListFormatsExt(read('microdia-sn9c325-pc-camera/list-formats-ext.txt')));
  assert.deepEqual(modes, [
    { format: 'JPEG', width: 160, height: 120, fps: [] },
    { format: 'JPEG', width: 320, height: 240, fps: [] },
    { format: 'JPEG', width: 640, height: 480, fps: [] },
  ]);
});

test('older layout with stepwise sizes (Pi camera, bcm2835-v4l2)', () => {
  const formats = parseListFormatsExt(read('rpi-camera-bcm2835-v4l2-legacy/list-formats-ext.txt'));
  assert.deepEqual(formats.map((f) => f.fourcc), ['YU12', 'YUYV', 'RGB3', 'JPEG', 'H264', 'MJPG']);
  assert.deepEqual(formats[4]?.sizes, [
    { kind: 'stepwise', minWidth: 32, minHeight: 32, maxWidth: 2592, maxHeight: 1944, stepWidth: 2, stepHeight: 2, intervals: [] },
  ]);
  const h264 = modesFromFormats(formats).filter((m) => m.format === 'H264');
  assert.deepEqual(h264[0], { format: 'H264', width: 2592, height: 1944, fps: [] }, 'range maximum first');
  assert.ok(h264.some((m) => m.width === 1920 && m.height === 1080), 'common sizes inside the range');
});

test('unicam: stepwise 16x16-16376x16376, greyscale fourccs with trailing space', () => {
  const formats = parseListFormatsExt(read('rpi-unicam-imx519/list-formats-ext.txt'));
  assert.equal(formats.length, 46);
  assert.ok(formats.some((f) => f.fourcc === 'Y10'), "'Y10 ' is trimmed");
  assert.equal(formats.find((f) => f.fourcc === 'pRAA')?.description, '10-bit Bayer RGRG/GBGB Packed');
});

test('only Video Capture sections count: output formats and fields of a combined dump are skipped', () => {
  // Real shape of `--list-formats-ext --list-fields --list-formats-out` (see systems/raspi4-mainsailos).
  const text = read('generic-webcam-h264-yg-u700/list-formats-ext.txt') +
    'Supported Video Fields:\n\tNone\nioctl: VIDIOC_ENUM_FMT\n\tType: Video Output\n\n\t[0]: \'NV12\' (Y/CbCr 4:2:0)\n';
  assert.deepEqual(parseListFormatsExt(text).map((f) => f.fourcc), ['MJPG', 'H264', 'YUYV']);
});

test('stepwise and continuous intervals, with and without the fps tail', () => {
  // Constructed in v4l2-ctl's print format (print_frmsize/print_frmival): no recorded camera in
  // hw-fixtures uses continuous sizes, and older v4l-utils omit the "(x-y fps)" tail.
  const text = [
    'ioctl: VIDIOC_ENUM_FMT',
    '\tType: Video Capture',
    '',
    "\t[0]: 'YUYV' (YUYV 4:2:2)",
    '\t\tSize: Continuous 160x120 - 1280x720',
    '\t\t\tInterval: Continuous 0.033s - 1.000s (1.000-30.000 fps)',
    "\t[1]: 'MJPG' (Motion-JPEG, compressed)",
    '\t\tSize: Stepwise 320x240 - 1920x1080 with step 16/8',
    '\t\t\tInterval: Stepwise 0.017s - 0.067s with step 0.001s',
  ].join('\n');
  const formats = parseListFormatsExt(text);
  assert.deepEqual(formats[0]?.sizes[0], {
    kind: 'continuous', minWidth: 160, minHeight: 120, maxWidth: 1280, maxHeight: 720, stepWidth: 1, stepHeight: 1,
    intervals: [{ kind: 'continuous', minFps: 1, maxFps: 30 }],
  });
  assert.deepEqual(formats[1]?.sizes[0]?.intervals, [{ kind: 'stepwise', minFps: 14.925, maxFps: 58.824 }]);
  const modes = modesFromFormats(formats);
  assert.deepEqual(modes.find((m) => m.format === 'YUYV' && m.width === 1280)?.fps, [30, 25, 24, 20, 15, 10, 5]);
  // Range maximum first, then common sizes on the 16/8 grid inside the range.
  assert.deepEqual(modes.filter((m) => m.format === 'MJPG').map((m) => `${m.width}x${m.height}`), [
    '1920x1080', '1280x960', '1280x720', '1024x768', '800x600', '640x480', '320x240',
  ]);
  assert.deepEqual(modes.find((m) => m.format === 'MJPG')?.fps, [58.824, 50, 30, 25, 24, 20, 15]);
});
