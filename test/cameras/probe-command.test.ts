import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { runProbe } from '../../src/cameras/probe-command.ts';
import { FIXTURES, V4L2_FIXTURES, STANDINS, fixtureDevices, removeDir, tempDir } from './fake-box.ts';

// runProbe runs v4l2-ctl from PATH: the stand-in, replaying recorded cameras, comes first.
const savedPath = process.env.PATH;
let fixDir = '';
let work = '';
before(async () => {
  fixDir = await fixtureDevices({
    video0: path.join(V4L2_FIXTURES, 'logitech-c922'),
    video2: path.join(V4L2_FIXTURES, 'generic-webcam-h264-yg-u700'),
  });
  work = await tempDir('probe');
  process.env.PATH = [STANDINS, savedPath ?? ''].join(path.delimiter);
  process.env.RIGCAM_FIXTURE_DIR = fixDir;
});
after(async () => {
  process.env.PATH = savedPath;
  delete process.env.RIGCAM_FIXTURE_DIR;
  await removeDir(fixDir);
  await removeDir(work);
});

interface ProbeJson {
  device?: string;
  modes: Array<{ format: string; width: number; height: number; fps: number[] }>;
  default_record: { format: string; width: number; height: number; fps: number } | null;
  default_preview: { format: string; width: number; height: number; fps: number } | null;
  controls: Array<Record<string, unknown>>;
}

test('probe --device --json: modes, defaults and typed controls from the camera', async () => {
  const res = await runProbe({ device: '/dev/video0', json: true });
  assert.equal(res.exitCode, 0, res.output);
  const out = JSON.parse(res.output) as ProbeJson;
  assert.equal(out.device, '/dev/video0');
  assert.equal(out.modes.length, 36);
  assert.deepEqual(out.modes.find((m) => m.format === 'MJPG' && m.width === 1920), {
    format: 'MJPG', width: 1920, height: 1080, fps: [30, 24, 20, 15, 10, 7.5, 5],
  });
  assert.deepEqual(out.default_record, { format: 'MJPG', width: 1920, height: 1080, fps: 30 });
  assert.deepEqual(out.default_preview, { format: 'MJPG', width: 640, height: 480, fps: 15 });
  assert.equal(out.controls.length, 17);
  assert.deepEqual(out.controls.find((c) => c.name === 'exposure_time_absolute'), {
    name: 'exposure_time_absolute', type: 'int', min: 3, max: 2047, step: 1, default: 250, value: 250, inactive: true, read_only: false,
  });
  assert.deepEqual(out.controls.find((c) => c.name === 'auto_exposure'), {
    name: 'auto_exposure', type: 'menu', min: 0, max: 3, step: null, default: 3, value: 3, inactive: false, read_only: false,
  });
});

test('probe --device without --json prints a readable table', async () => {
  const res = await runProbe({ device: '/dev/video2' });
  assert.equal(res.exitCode, 0, res.output);
  assert.match(res.output, /^Camera: \/dev\/video2$/m);
  assert.match(res.output, /^Default record: {2}H264 1920x1080 @ 30 fps$/m);
  assert.match(res.output, /^Modes \(27\):$/m);
  assert.match(res.output, /^ {2}H264 {4}1920x1080 {3}30, 25$/m);
});

test('--target-fps changes the default record mode', async () => {
  const out = JSON.parse((await runProbe({ device: '/dev/video0', json: true, targetFps: 60 })).output) as ProbeJson;
  assert.deepEqual(out.default_record, { format: 'MJPG', width: 1280, height: 720, fps: 60 });
});

test('--save-dump writes the raw outputs, and --from-dump gives the same probe', async () => {
  const dump = path.join(work, 'c922-dump');
  const res = await runProbe({ device: '/dev/video0', saveDump: dump });
  assert.equal(res.exitCode, 0, res.output);
  assert.match(res.output, /saved list-formats-ext\.txt, list-ctrls-menus\.txt, info\.txt to /);
  for (const [saved, recorded] of [['list-formats-ext.txt', 'list-formats-ext.txt'], ['list-ctrls-menus.txt', 'list-ctrls.txt'], ['info.txt', 'info.txt']]) {
    assert.equal(
      await readFile(path.join(dump, saved), 'utf8'),
      await readFile(path.join(V4L2_FIXTURES, 'logitech-c922', recorded), 'utf8'),
      `${saved} is what v4l2-ctl printed`,
    );
  }
  const live = JSON.parse((await runProbe({ device: '/dev/video0', json: true })).output) as ProbeJson;
  const fromDump = JSON.parse((await runProbe({ fromDump: dump, json: true })).output) as ProbeJson;
  delete live.device;
  assert.deepEqual(fromDump, live);
});

test('--from-dump on a recorded fixture folder (older layout, menus with items)', async () => {
  const res = await runProbe({ fromDump: path.join(V4L2_FIXTURES, 'rpi-camera-bcm2835-v4l2-legacy'), json: true });
  assert.equal(res.exitCode, 0, res.output);
  const out = JSON.parse(res.output) as ProbeJson;
  assert.equal(out.device, undefined);
  assert.deepEqual(out.default_record, { format: 'H264', width: 2592, height: 1944, fps: 30 });
  assert.deepEqual(out.controls.find((c) => c.name === 'auto_exposure')?.menu, { 0: 'Auto Mode', 1: 'Manual Mode' });
  const table = await runProbe({ fromDump: path.join(V4L2_FIXTURES, 'rpi-camera-bcm2835-v4l2-legacy') });
  assert.match(table.output, /auto_exposure .*0=Auto Mode, 1=Manual Mode/);
  assert.match(table.output, /^ {2}H264 {4}2592x1944 {3}\(not listed\)$/m);
});

test('--rpicam-list FILE --json prints the cameras, modes with max fps and crop', async () => {
  const file = path.join(FIXTURES, 'rpicam/rpi-docs-imx219-imx477/list-cameras.txt');
  const res = await runProbe({ rpicamList: file, json: true });
  assert.equal(res.exitCode, 0, res.output);
  const out = JSON.parse(res.output) as { cameras: Array<{ index: number; sensor: string; path: string; modes: unknown[] }> };
  assert.deepEqual(out.cameras.map((c) => [c.index, c.sensor, c.path, c.modes.length]), [
    [0, 'imx219', '/base/soc/i2c0mux/i2c@1/imx219@10', 8],
    [1, 'imx477', '/base/soc/i2c0mux/i2c@1/imx477@1a', 4],
  ]);
  assert.deepEqual(out.cameras[1]?.modes[0], { format: 'SRGGB10_CSI2P', width: 1332, height: 990, fps: [120.05], crop: [696, 528, 2664, 1980], bit_depth: 10 });
  const table = await runProbe({ rpicamList: file });
  assert.match(table.output, /^Camera 1: imx477 {2}\/base\/soc\/i2c0mux\/i2c@1\/imx477@1a$/m);
  assert.match(table.output, /^ {2}SRGGB12_CSI2P +4056x3040 +10 +\(0, 0\)\/4056x3040$/m);
});

test('clear errors: missing device and missing v4l2-ctl exit 1', async () => {
  const missing = await runProbe({ device: '/dev/video5', json: true });
  assert.deepEqual(missing, { exitCode: 1, output: 'rigcam probe: cannot probe /dev/video5: Cannot open device /dev/video5, exiting.\n' });
  const saved = process.env.PATH;
  process.env.PATH = path.join(work, 'empty-bin');
  try {
    const noTool = await runProbe({ device: '/dev/video0' });
    assert.equal(noTool.exitCode, 1);
    assert.match(noTool.output, /v4l2-ctl not found on PATH \(install v4l-utils/);
  } finally {
    process.env.PATH = saved;
  }
});

test('clear errors: bad usage and unreadable input exit 2', async () => {
  const cases: Array<[Parameters<typeof runProbe>[0], RegExp]> = [
    [{}, /give one of --device/],
    [{ device: '/dev/video0', fromDump: work }, /mutually exclusive/],
    [{ saveDump: work, fromDump: work }, /mutually exclusive|--save-dump needs --device/],
    [{ fromDump: path.join(work, 'nope') }, /cannot read dump .*nope.*list-formats-ext\.txt/],
    [{ rpicamList: path.join(work, 'nope.txt') }, /cannot read .*nope\.txt/],
    [{ device: '/dev/video0', targetFps: -5 }, /invalid options: targetFps/],
  ];
  for (const [opts, message] of cases) {
    const res = await runProbe(opts);
    assert.equal(res.exitCode, 2, JSON.stringify(opts));
    assert.match(res.output, message);
  }
  const junk = path.join(work, 'junk.txt');
  await writeFile(junk, 'hello\n');
  assert.match((await runProbe({ rpicamList: junk })).output, /no cameras found in/);
  assert.equal((await runProbe({ fromDump: work })).exitCode, 2);
  await writeFile(path.join(work, 'list-formats-ext.txt'), 'not a listing\n');
  assert.match((await runProbe({ fromDump: work })).output, /holds no formats or controls/);
  const none = path.join(work, 'none.txt');
  await writeFile(none, 'No cameras available!\n');
  assert.deepEqual(await runProbe({ rpicamList: none, json: true }), { exitCode: 0, output: '{\n  "cameras": []\n}\n' });
});
