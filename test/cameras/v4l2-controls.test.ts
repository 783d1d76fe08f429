import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseListCtrls } from '../../src/cameras/v4l2-controls.ts';
import { V4L2_FIXTURES } from './fake-box.ts';

const read = (rel: string): string => readFileSync(path.join(V4L2_FIXTURES, rel), 'utf8');

test('Logitech C922 --list-ctrls: sections, types, inactive flag', () => {
  const ctrls = parseListCtrls(read('logitech-c922/list-ctrls.txt'));
  assert.equal(ctrls.length, 17);
  const wbt = ctrls.find((c) => c.name === 'white_balance_temperature');
  assert.deepEqual(wbt, {
    name: 'white_balance_temperature', id: 0x0098091a, type: 'int', min: 2000, max: 6500, step: 1, default: 4000, value: 4000,
    flags: ['inactive'], inactive: true, readOnly: false, section: 'User Controls',
  });
  const ae = ctrls.find((c) => c.name === 'auto_exposure');
  assert.equal(ae?.type, 'menu');
  assert.equal(ae?.section, 'Camera Controls');
  assert.equal(ae?.menu, undefined, '--list-ctrls prints no menu items');
  assert.deepEqual(ctrls.find((c) => c.name === 'pan_absolute')?.step, 3600);
  assert.deepEqual(
    ctrls.filter((c) => c.type === 'bool').map((c) => [c.name, c.value]),
    [['white_balance_automatic', 1], ['exposure_dynamic_framerate', 1], ['focus_automatic_continuous', 1]],
  );
});

test('menu items, value label and tab-indented items (Anker PowerConf C200, -L)', () => {
  const plf = parseListCtrls(read('anker-powerconf-c200/list-ctrls.txt')).find((c) => c.name === 'power_line_frequency');
  assert.deepEqual(plf?.menu, { 0: 'Disabled', 1: '50 Hz', 2: '60 Hz' });
  assert.equal(plf?.value, 2);
  assert.equal(plf?.valueLabel, '60 Hz');
  assert.equal(plf?.default, 0);
});

test('intmenu items carry the integer, not the hex (Pi camera bcm2835 MMAL)', () => {
  const ctrls = parseListCtrls(read('rpi-camera-bcm2835-v4l2-legacy/list-ctrls-menus.txt'));
  assert.deepEqual(ctrls.find((c) => c.name === 'auto_exposure')?.menu, { 0: 'Auto Mode', 1: 'Manual Mode' });
  const bias = ctrls.find((c) => c.name === 'auto_exposure_bias');
  assert.equal(bias?.type, 'intmenu');
  assert.equal(bias?.menu?.['0'], '-4000');
  assert.equal(bias?.menu?.['12'], '0');
  assert.equal(Object.keys(bias?.menu ?? {}).length, 15);
});

test('comma-separated flags, read-only, volatile, unknown types, Codec Controls (i.MX8MP encoder)', () => {
  const ctrls = parseListCtrls(read('ctrls-excerpts/imx8mp-hantro-vsi-encoder/list-ctrls-menus.txt'));
  const ro = ctrls.find((c) => c.name === 'min_number_of_capture_buffers');
  assert.deepEqual(ro?.flags, ['read-only', 'volatile']);
  assert.equal(ro?.readOnly, true);
  const unk = ctrls.find((c) => c.name === 'vsi_priv_v4l2_roi_params_set');
  assert.equal(unk?.type, 'unknown');
  assert.equal(unk?.value, undefined, "'value=unsupported payload type' is not a number");
  assert.deepEqual(unk?.flags, ['has-payload']);
  const brm = ctrls.find((c) => c.name === 'video_bitrate_mode');
  assert.deepEqual([brm?.section, brm?.valueLabel, brm?.flags, brm?.menu], ['Codec Controls', 'Variable Bitrate', ['update'], { 0: 'Variable Bitrate' }]);
  assert.equal(ctrls.find((c) => c.name === 'video_gop_size')?.max, 2147483647);
});

test('flags "inactive, has-min-max" and the PS3 Eye "inactive, volatile"', () => {
  const s = parseListCtrls(read('ctrls-excerpts/syntalos-uvc-camera/list-ctrls-menus.txt'));
  const wbt = s.find((c) => c.name === 'white_balance_temperature');
  assert.deepEqual([wbt?.inactive, wbt?.flags], [true, ['inactive', 'has-min-max']]);
  assert.equal(s.find((c) => c.name === 'brightness')?.inactive, false);
  const eye = parseListCtrls(read('sony-ps3-eye-ov534/list-ctrls.txt'));
  assert.deepEqual(eye.filter((c) => c.inactive).map((c) => c.name), ['exposure', 'gain']);
  assert.equal(eye.find((c) => c.name === 'hue')?.min, -90);
});

test('old v4l2-ctl without headings (3DO camera) and v4l2-ctl --all framing', () => {
  const ctrls = parseListCtrls(read('systems/btt-pi2-rk3566/video9/list-ctrls.txt'));
  assert.equal(ctrls.length, 14);
  assert.equal(ctrls[0]?.section, undefined);
  assert.deepEqual(ctrls.find((c) => c.name === 'brightness')?.min, -64);
  // Lines of --all output that are not controls must not become controls or headings.
  const all = `Driver Info:\n\tDriver name      : ov534\nPriority: 2\nFormat Video Capture:\n\tWidth/Height      : 640/480\n${read('sony-ps3-eye-ov534/list-ctrls.txt')}`;
  assert.equal(parseListCtrls(all).length, parseListCtrls(read('sony-ps3-eye-ov534/list-ctrls.txt')).length);
});

test('int64, button and bitmask lines', () => {
  // Constructed in v4l2-ctl's print_qctrl format: none of the recorded cameras has these types.
  const text = [
    'Camera Controls',
    '',
    '                 pan_reset 0x009a0906 (button) : flags=write-only, execute-on-write',
    '       exposure_time_64bit 0x009a0999 (int64)  : min=0 max=9223372036854775807 step=1 default=0 value=0',
    '           focus_range_set 0x009a0998 (bitmask): max=0x00000007 default=0x00000001 value=0x00000003',
  ].join('\n');
  const ctrls = parseListCtrls(text);
  assert.deepEqual(ctrls.map((c) => c.type), ['button', 'int64', 'bitmask']);
  assert.deepEqual(ctrls[0]?.flags, ['write-only', 'execute-on-write']);
  assert.deepEqual([ctrls[2]?.max, ctrls[2]?.default, ctrls[2]?.value], [7, 1, 3]);
  assert.equal(ctrls[1]?.type, 'int64');
});
