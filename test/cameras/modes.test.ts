import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseListFormatsExt } from '../../src/cameras/v4l2-formats.ts';
import {
  modesFromFormats, chooseRecordMode, choosePreviewMode, rawBytesPerSecond, USB2_RAW_BUDGET_BYTES_PER_SEC, type CaptureMode,
} from '../../src/cameras/modes.ts';
import { V4L2_FIXTURES } from './fake-box.ts';

const modesOf = (rel: string): CaptureMode[] =>
  modesFromFormats(parseListFormatsExt(readFileSync(path.join(V4L2_FIXTURES, rel, 'list-formats-ext.txt'), 'utf8')));

test('record: camera-native H.264 wins over a larger MJPEG that misses the target', () => {
  // This webcam offers MJPG 2560x1440 at 25 fps only and H264 up to 1920x1080 at 30.
  assert.deepEqual(chooseRecordMode(modesOf('generic-webcam-h264-yg-u700')), { format: 'H264', width: 1920, height: 1080, fps: 30 });
  assert.deepEqual(chooseRecordMode(modesOf('arducam-1080p-uvc-h264-node')), { format: 'H264', width: 1920, height: 1080, fps: 30 });
});

test('record: MJPEG, the largest reaching the target, capped at 1080p for transcoding', () => {
  // ELP 4K: MJPG 3840x2160@30 exists, but the Pi's encoders stop at 1080p.
  assert.deepEqual(chooseRecordMode(modesOf('elp-4k-hd-usb-camera')), { format: 'MJPG', width: 1920, height: 1080, fps: 30 });
  // Raising the cap takes the 4K mode.
  assert.deepEqual(chooseRecordMode(modesOf('elp-4k-hd-usb-camera'), { maxTranscodePixels: 3840 * 2160 }), {
    format: 'MJPG', width: 3840, height: 2160, fps: 30,
  });
  assert.deepEqual(chooseRecordMode(modesOf('logitech-c922')), { format: 'MJPG', width: 1920, height: 1080, fps: 30 });
});

test('record: the lowest offered rate that reaches the target (60 offered, 30 wanted)', () => {
  const c922 = modesOf('logitech-c922');
  assert.deepEqual(c922.find((m) => m.format === 'MJPG' && m.width === 1280)?.fps.slice(0, 2), [60, 30]);
  assert.deepEqual(chooseRecordMode(c922, { targetFps: 60 }), { format: 'MJPG', width: 1280, height: 720, fps: 60 });
  assert.deepEqual(chooseRecordMode(modesOf('elp-stereo-3d-usb-camera'), { targetFps: 120 }), {
    format: 'MJPG', width: 1600, height: 600, fps: 120,
  });
});

test('record: raw only when nothing compressed reaches the target, limited by USB 2.0 bandwidth', () => {
  const yuyvOnly = modesOf('elp-4k-hd-usb-camera').filter((m) => m.format === 'YUYV');
  assert.deepEqual(chooseRecordMode(yuyvOnly), { format: 'YUYV', width: 640, height: 480, fps: 30 });
  assert.ok(rawBytesPerSecond({ format: 'YUYV', width: 640, height: 480 }, 30) <= USB2_RAW_BUDGET_BYTES_PER_SEC);
  // With a budget below 640x480x2x30 = 18.4 MB/s, 320x240 is the largest raw mode at 30 fps.
  assert.deepEqual(chooseRecordMode(yuyvOnly, { usbBudgetBytesPerSec: 10_000_000 }), { format: 'YUYV', width: 320, height: 240, fps: 30 });
});

test('record: when nothing reaches the target, the fastest mode; nothing usable gives null', () => {
  // Kodak PIXPRO: 30 fps only at 1280x720 and 640x360.
  assert.deepEqual(chooseRecordMode(modesOf('kodak-pixpro-4k'), { targetFps: 50 }), { format: 'MJPG', width: 1280, height: 720, fps: 30 });
  // The Imaging Source DFK: Bayer only, which needs an ISP.
  assert.equal(chooseRecordMode(modesOf('theimagingsource-dfk-24uj003')), null);
  assert.equal(choosePreviewMode(modesOf('theimagingsource-dfk-24uj003')), null);
});

test('record: rates the driver does not list are assumed to reach the target (Microdia JPEG)', () => {
  assert.deepEqual(chooseRecordMode(modesOf('microdia-sn9c325-pc-camera')), { format: 'JPEG', width: 640, height: 480, fps: 30 });
});

test('preview: about 640 wide at a modest rate, MJPEG preferred', () => {
  assert.deepEqual(choosePreviewMode(modesOf('logitech-c922')), { format: 'MJPG', width: 640, height: 480, fps: 15 });
  assert.deepEqual(choosePreviewMode(modesOf('arducam-1080p-uvc')), { format: 'MJPG', width: 640, height: 480, fps: 30 });
  // Camera that offers only 30/25 at 640x360 (no 15): the lowest rate above 15.
  assert.deepEqual(choosePreviewMode(modesOf('generic-webcam-h264-yg-u700')), { format: 'MJPG', width: 640, height: 360, fps: 25 });
  assert.deepEqual(choosePreviewMode(modesOf('arducam-1080p-uvc-h264-node')), { format: 'H264', width: 640, height: 480, fps: 30 });
});
