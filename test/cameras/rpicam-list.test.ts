import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseRpicamListCameras, bitDepthOf } from '../../src/cameras/rpicam-list.ts';
import { FIXTURES } from './fake-box.ts';

const read = (name: string): string => readFileSync(path.join(FIXTURES, 'rpicam', name, 'list-cameras.txt'), 'utf8');

test('two cameras, two pixel formats each (Pi docs: imx219 + imx477)', () => {
  const { cameras } = parseRpicamListCameras(read('rpi-docs-imx219-imx477'));
  assert.deepEqual(cameras.map((c) => [c.index, c.sensor, c.path]), [
    [0, 'imx219', '/base/soc/i2c0mux/i2c@1/imx219@10'],
    [1, 'imx477', '/base/soc/i2c0mux/i2c@1/imx477@1a'],
  ]);
  const imx219 = cameras[0];
  assert.equal(imx219?.modes.length, 8);
  assert.deepEqual(imx219?.modes[0], {
    format: 'SRGGB10_CSI2P', width: 640, height: 480, fps: [206.65], crop: [1000, 752, 1280, 960], bit_depth: 10,
  });
  assert.deepEqual(imx219?.modes[4], {
    format: 'SRGGB8', width: 640, height: 480, fps: [206.65], crop: [1000, 752, 1280, 960], bit_depth: 8,
  });
  assert.deepEqual(imx219?.pixel_array, { width: 3280, height: 2464 });
  const imx477 = cameras[1];
  assert.deepEqual(imx477?.modes.map((m) => `${m.format} ${m.width}x${m.height} ${m.fps[0]} ${m.bit_depth}`), [
    'SRGGB10_CSI2P 1332x990 120.05 10',
    'SRGGB12_CSI2P 2028x1080 50.03 12',
    'SRGGB12_CSI2P 2028x1520 40.01 12',
    'SRGGB12_CSI2P 4056x3040 10 12',
  ]);
  assert.deepEqual(imx477?.modes[1]?.crop, [0, 440, 4056, 2160]);
});

test('Pi 5 paths and the "[4608x2592 10-bit RGGB]" header (imx708, imx500)', () => {
  const imx708 = parseRpicamListCameras(read('pi5-imx708-camera-module-3')).cameras[0];
  assert.equal(imx708?.path, '/base/axi/pcie@120000/rp1/i2c@88000/imx708@1a');
  assert.deepEqual(imx708?.pixel_array, { width: 4608, height: 2592 });
  assert.deepEqual(imx708?.modes[0], {
    format: 'SRGGB10_CSI2P', width: 1536, height: 864, fps: [120.13], crop: [768, 432, 3072, 1728], bit_depth: 10,
  });
  const imx500 = parseRpicamListCameras(read('pi5-imx500-ai-camera')).cameras[0];
  assert.deepEqual(imx500?.modes.map((m) => m.fps[0]), [30.02, 10]);
  const wide = parseRpicamListCameras(read('pi4-imx708-wide')).cameras[0];
  assert.equal(wide?.sensor, 'imx708_wide');
});

test('the first libcamera-apps format: bare sizes, no rate, no crop', () => {
  const cam = parseRpicamListCameras(read('libcamera-apps-2021-imx477-compact')).cameras[0];
  assert.deepEqual(cam?.modes, [
    { format: 'SRGGB10_CSI2P', width: 1332, height: 990, fps: [], crop: null, bit_depth: 10 },
    { format: 'SRGGB12_CSI2P', width: 2028, height: 1080, fps: [], crop: null, bit_depth: 12 },
    { format: 'SRGGB12_CSI2P', width: 2028, height: 1520, fps: [], crop: null, bit_depth: 12 },
    { format: 'SRGGB12_CSI2P', width: 4056, height: 3040, fps: [], crop: null, bit_depth: 12 },
  ]);
});

test('no cameras and bit depths of mono/unpacked formats', () => {
  assert.deepEqual(parseRpicamListCameras('No cameras available!\n'), { cameras: [] });
  assert.equal(bitDepthOf('R10_CSI2P'), 10);
  assert.equal(bitDepthOf('SBGGR12'), 12);
  assert.equal(bitDepthOf('PISP_COMP1_RGGB'), null);
});
