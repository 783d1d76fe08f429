import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseListCtrls, type V4l2Control } from '../../src/cameras/v4l2-controls.ts';
import { isAutoMode, validateControlValue, setControl, wantedControls } from '../../src/cameras/controls.ts';
import { V4L2_FIXTURES, fixtureDevices, removeDir, standinEnv, tempDir } from './fake-box.ts';

const ctrls = (rel: string): V4l2Control[] => parseListCtrls(readFileSync(path.join(V4L2_FIXTURES, rel), 'utf8'));
const c922 = ctrls('logitech-c922/list-ctrls.txt');
const byName = (list: V4l2Control[], name: string): V4l2Control => {
  const c = list.find((x) => x.name === name);
  assert.ok(c, `fixture has ${name}`);
  return c;
};

test('integers: range and step', () => {
  const pan = byName(c922, 'pan_absolute'); // min=-36000 max=36000 step=3600
  assert.deepEqual(validateControlValue(pan, '7200'), { ok: true, value: 7200 });
  assert.deepEqual(validateControlValue(pan, -36000), { ok: true, value: -36000 });
  const off = validateControlValue(pan, 100);
  assert.equal(off.ok, false);
  assert.match(off.ok ? '' : off.error, /steps of 3600 from -36000: 100 is not allowed \(nearest: 0 or 3600\)/);
  const high = validateControlValue(byName(c922, 'brightness'), 256);
  assert.match(high.ok ? '' : high.error, /must be <= 255 \(got 256\)/);
  assert.match((r => (r.ok ? '' : r.error))(validateControlValue(byName(c922, 'brightness'), 'bright')), /needs an integer/);
  assert.match((r => (r.ok ? '' : r.error))(validateControlValue(byName(c922, 'brightness'), 1.5)), /needs an integer/);
});

test('booleans accept 0/1, true/false, on/off', () => {
  const wb = byName(c922, 'white_balance_automatic');
  assert.deepEqual(validateControlValue(wb, true), { ok: true, value: 1 });
  assert.deepEqual(validateControlValue(wb, 'off'), { ok: true, value: 0 });
  assert.deepEqual(validateControlValue(wb, '1'), { ok: true, value: 1 });
  assert.equal(validateControlValue(wb, 2).ok, false);
});

test('menus: by index or by item name, only listed items', () => {
  const plf = byName(ctrls('anker-powerconf-c200/list-ctrls.txt'), 'power_line_frequency');
  assert.deepEqual(validateControlValue(plf, '50 Hz'), { ok: true, value: 1 });
  assert.deepEqual(validateControlValue(plf, 2), { ok: true, value: 2 });
  const bad = validateControlValue(plf, 3);
  assert.match(bad.ok ? '' : bad.error, /no menu item '3'; choose one of: 0 \(Disabled\), 1 \(50 Hz\), 2 \(60 Hz\)/);
  // auto_exposure on the Pi camera lists 0 and 1 only although max=3.
  const ae = byName(ctrls('rpi-camera-bcm2835-v4l2-legacy/list-ctrls-menus.txt'), 'auto_exposure');
  assert.deepEqual(validateControlValue(ae, 'manual mode'), { ok: true, value: 1 });
  assert.equal(validateControlValue(ae, 3).ok, false);
  // intmenu: the index, or the integer the item stands for.
  const bias = byName(ctrls('rpi-camera-bcm2835-v4l2-legacy/list-ctrls-menus.txt'), 'auto_exposure_bias');
  assert.deepEqual(validateControlValue(bias, '-4000'), { ok: true, value: 0 });
  assert.deepEqual(validateControlValue(bias, 12), { ok: true, value: 12 });
  // Menu without listed items (--list-ctrls output): range only.
  const ae922 = byName(c922, 'auto_exposure');
  assert.deepEqual(validateControlValue(ae922, 1), { ok: true, value: 1 });
  assert.equal(validateControlValue(ae922, 4).ok, false);
});

test('inactive and read-only controls are refused with the reason', () => {
  const exp = validateControlValue(byName(c922, 'exposure_time_absolute'), 100);
  assert.match(exp.ok ? '' : exp.error, /inactive right now .*auto_exposure=1/);
  const ro = byName(ctrls('ctrls-excerpts/imx8mp-hantro-vsi-encoder/list-ctrls-menus.txt'), 'min_number_of_capture_buffers');
  assert.match((r => (r.ok ? '' : r.error))(validateControlValue(ro, 2)), /read-only/);
  const unknown = byName(ctrls('ctrls-excerpts/imx8mp-hantro-vsi-encoder/list-ctrls-menus.txt'), 'vsi_priv_v4l2_roi_params_set');
  assert.match((r => (r.ok ? '' : r.error))(validateControlValue(unknown, 1)), /type 'unknown'/);
});

test('buttons and bitmasks', () => {
  const [button, bitmask] = parseListCtrls(
    // v4l2-ctl's print format for these types (no recorded camera has them).
    '  pan_reset 0x009a0906 (button) : flags=write-only\n  focus_range 0x009a0998 (bitmask): max=0x00000006 default=0x00000002 value=0x00000002\n',
  );
  assert.ok(button && bitmask);
  assert.deepEqual(validateControlValue(button, 'anything'), { ok: true, value: 1 });
  assert.deepEqual(validateControlValue(bitmask, '0x4'), { ok: true, value: 4 });
  assert.match((r => (r.ok ? '' : r.error))(validateControlValue(bitmask, 1)), /allows only the bits 0x6/);
});

test('standard menus by name when the listing has no items (the C922 prints --list-ctrls only)', () => {
  const ae = byName(c922, 'auto_exposure'); // min=0 max=3, no items listed
  assert.deepEqual(validateControlValue(ae, 'Manual Mode'), { ok: true, value: 1 });
  assert.deepEqual(validateControlValue(ae, 'aperture priority mode'), { ok: true, value: 3 });
  assert.match((r => (r.ok ? '' : r.error))(validateControlValue(ae, 'Manual')), /no menu item 'Manual'; choose one of: 0 \(Auto Mode\), 1 \(Manual Mode\), 2 \(Shutter Priority Mode\), 3 \(Aperture Priority Mode\)/);
  // Only the items within the control's range: 3 (Auto) is not offered by a camera whose max is 2.
  assert.equal(validateControlValue(byName(c922, 'power_line_frequency'), 'Auto').ok, false);
});

test('wantedControls: state overrides config, automatic modes first, exposure_dynamic_framerate off for a fixed exposure', () => {
  const order = (w: ReturnType<typeof wantedControls>) => w.map((c) => `${c.name}=${String(c.value)}/${c.origin}`);
  assert.deepEqual(
    order(wantedControls({ exposure_time_absolute: 100, auto_exposure: 'Manual Mode', brightness: 140, white_balance_automatic: false }, { brightness: 90 }, c922)),
    ['auto_exposure=Manual Mode/config', 'white_balance_automatic=false/config', 'exposure_time_absolute=100/config', 'brightness=90/state', 'exposure_dynamic_framerate=0/fixed_exposure'],
  );
  // Said otherwise in the config (or remembered): kept as said.
  assert.deepEqual(order(wantedControls({ auto_exposure: 1, exposure_dynamic_framerate: true }, {}, c922)), ['auto_exposure=1/config', 'exposure_dynamic_framerate=true/config']);
  assert.deepEqual(order(wantedControls({ auto_exposure: 1 }, { exposure_dynamic_framerate: 1 }, c922)), ['auto_exposure=1/config', 'exposure_dynamic_framerate=1/state']);
  // Automatic exposure, or a camera without the control: nothing added.
  assert.deepEqual(order(wantedControls({ auto_exposure: 'Aperture Priority Mode' }, {}, c922)), ['auto_exposure=Aperture Priority Mode/config']);
  assert.deepEqual(order(wantedControls({ auto_exposure: 1 }, {}, c922.filter((c) => c.name !== 'exposure_dynamic_framerate'))), ['auto_exposure=1/config']);
  assert.deepEqual(['auto_exposure', 'white_balance_automatic', 'focus_automatic_continuous', 'exposure_auto_priority', 'auto_exposure_bias', 'brightness'].map(isAutoMode), [true, true, true, false, false, false]);
});

let fixDir = '';
let logDir = '';
before(async () => {
  fixDir = await fixtureDevices({ video0: path.join(V4L2_FIXTURES, 'logitech-c922') });
  logDir = await tempDir('ctl-log');
});
after(async () => {
  await removeDir(fixDir);
  await removeDir(logDir);
});

test('setControl runs v4l2-ctl --set-ctrl with the normalised value', async () => {
  const log = path.join(logDir, 'set.log');
  const env = standinEnv({ RIGCAM_FIXTURE_DIR: fixDir, RIGCAM_STANDIN_LOG: log });
  const res = await setControl('/dev/video0', 'white_balance_automatic', 'off', { env, control: byName(c922, 'white_balance_automatic') });
  assert.deepEqual(res, { ok: true, stderr: '' });
  assert.equal((await readFile(log, 'utf8')).trim(), '-d /dev/video0 --set-ctrl=white_balance_automatic=0');
});

test('setControl refuses before running anything when validation fails', async () => {
  const log = path.join(logDir, 'refused.log');
  const env = standinEnv({ RIGCAM_FIXTURE_DIR: fixDir, RIGCAM_STANDIN_LOG: log });
  const res = await setControl('/dev/video0', 'exposure_time_absolute', 100, { env, control: byName(c922, 'exposure_time_absolute') });
  assert.equal(res.ok, false);
  assert.match(res.error ?? '', /inactive/);
  await assert.rejects(readFile(log, 'utf8'), /ENOENT/, 'v4l2-ctl was not run');
});

test("setControl reports v4l2-ctl's stderr (unknown control, missing device, missing tool)", async () => {
  const env = standinEnv({ RIGCAM_FIXTURE_DIR: fixDir });
  const unknown = await setControl('/dev/video0', 'no_such_control', 1, { env });
  assert.deepEqual([unknown.ok, unknown.error], [false, "unknown control 'no_such_control'"]);
  const missing = await setControl('/dev/video7', 'brightness', 1, { env });
  assert.deepEqual([missing.ok, missing.error], [false, 'Cannot open device /dev/video7, exiting.']);
  const noTool = await setControl('/dev/video0', 'brightness', 1, { env: { ...process.env, PATH: logDir } });
  assert.deepEqual([noTool.ok, noTool.error], [false, 'v4l2-ctl not found on PATH (install v4l-utils)']);
});
