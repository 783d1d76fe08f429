import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseListFormatsExt } from '../../src/cameras/v4l2-formats.ts';
import { modesFromFormats } from '../../src/cameras/modes.ts';
import { parseListCtrls } from '../../src/cameras/v4l2-controls.ts';
import { parseV4l2Info } from '../../src/cameras/v4l2-info.ts';
import { parseRpicamListCameras } from '../../src/cameras/rpicam-list.ts';
import { parseUdevInfo } from '../../src/cameras/udev-properties.ts';
import { FIXTURES } from './fake-box.ts';

/** Every folder below `dir` (itself included) that holds at least one file. */
function folders(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    const entries = readdirSync(d);
    if (entries.some((e) => statSync(path.join(d, e)).isFile())) out.push(d);
    for (const e of entries) if (statSync(path.join(d, e)).isDirectory()) walk(path.join(d, e));
  };
  walk(dir);
  return out;
}

const rel = (p: string): string => path.relative(FIXTURES, p);
const CTRL_TYPES = new Set(['int', 'int64', 'bool', 'menu', 'intmenu', 'button', 'bitmask', 'str', 'u8', 'u16', 'u32', 'area', 'unknown']);

test('every fixture folder says where it came from (SOURCE.md with a URL)', () => {
  for (const kind of ['v4l2', 'rpicam', 'udev']) {
    for (const dir of folders(path.join(FIXTURES, kind)).filter((d) => d !== path.join(FIXTURES, kind))) {
      // The kind's own folder only holds a README. Per-node folders of a recorded system share their system's SOURCE.md.
      const own = path.join(dir, 'SOURCE.md');
      const source = existsSync(own) ? own : path.join(path.dirname(dir), 'SOURCE.md');
      assert.ok(existsSync(source), `${rel(dir)} has no SOURCE.md`);
      assert.match(readFileSync(source, 'utf8'), /https:\/\/github\.com\/\S+/, `${rel(source)} names no URL`);
    }
  }
});

test('at least six camera makers and both list-formats-ext layouts are covered', () => {
  const formatFiles = folders(path.join(FIXTURES, 'v4l2')).filter((d) => existsSync(path.join(d, 'list-formats-ext.txt')));
  const texts = formatFiles.map((d) => readFileSync(path.join(d, 'list-formats-ext.txt'), 'utf8'));
  assert.ok(texts.some((t) => /^\s*\[0\]: '/m.test(t)), 'current layout present');
  assert.ok(texts.some((t) => /^\s*Pixel Format: '/m.test(t)), 'older layout present');
  const cameraFolders = readdirSync(path.join(FIXTURES, 'v4l2')).filter((n) => n !== 'systems' && n !== 'ctrls-excerpts');
  assert.ok(cameraFolders.length >= 6, `camera folders: ${cameraFolders.join(', ')}`);
});

test('every v4l2 listing parses to sane modes and controls', () => {
  let checked = 0;
  for (const dir of folders(path.join(FIXTURES, 'v4l2'))) {
    const fmtFile = path.join(dir, 'list-formats-ext.txt');
    if (existsSync(fmtFile)) {
      const formats = parseListFormatsExt(readFileSync(fmtFile, 'utf8'));
      const raw = readFileSync(fmtFile, 'utf8');
      const listed = (raw.match(/^\s*(\[\d+\]: '|Pixel Format: ')/gm) ?? []).length;
      // A node that lists no capture formats (m2m, metadata) may legitimately parse to nothing.
      if (/Type:\s*Video Capture[^\n]*\n\s*\n?\s*\[|Pixel Format/.test(raw)) {
        assert.ok(formats.length > 0, `${rel(fmtFile)}: no formats`);
        assert.equal(formats.length, listed, `${rel(fmtFile)}: every listed format parsed`);
      }
      for (const f of formats) assert.match(f.fourcc, /^[A-Za-z0-9]{1,4}$/, `${rel(fmtFile)}: fourcc ${f.fourcc}`);
      const modes = modesFromFormats(formats);
      // Rockchip ISP nodes list the empty range "32x16 - 0x0"; every other size line must yield modes.
      const sizeLines = (raw.match(/^\s*Size: (?!.* - 0x0 )/gm) ?? []).length;
      if (sizeLines > 0) assert.ok(modes.length > 0, `${rel(fmtFile)}: no modes`);
      for (const m of modes) {
        assert.ok(m.width >= 16 && m.width <= 16384 && m.height >= 16 && m.height <= 16384, `${rel(fmtFile)}: size ${m.width}x${m.height}`);
        for (const r of m.fps) assert.ok(r > 0 && r <= 1000, `${rel(fmtFile)}: rate ${r}`);
        assert.deepEqual(m.fps, [...m.fps].sort((a, b) => b - a), `${rel(fmtFile)}: rates highest first`);
      }
      checked++;
    }
    for (const name of ['list-ctrls-menus.txt', 'list-ctrls.txt']) {
      const file = path.join(dir, name);
      if (!existsSync(file)) continue;
      const text = readFileSync(file, 'utf8');
      const ctrls = parseListCtrls(text);
      const lines = (text.match(/^\s*\w+ 0x[0-9a-f]{8} \(/gm) ?? []).length;
      assert.ok(ctrls.length > 0, `${rel(file)}: no controls`);
      assert.equal(ctrls.length, lines, `${rel(file)}: one control per control line`);
      for (const c of ctrls) {
        assert.ok(CTRL_TYPES.has(c.type), `${rel(file)}: ${c.name} type ${c.type}`);
        if (c.type === 'int' || c.type === 'menu') {
          assert.ok(c.min !== undefined && c.max !== undefined && c.min <= c.max, `${rel(file)}: ${c.name} range`);
        }
        if (c.type !== 'unknown' && c.type !== 'button') assert.equal(typeof c.value, 'number', `${rel(file)}: ${c.name} value`);
        if (c.menu) for (const k of Object.keys(c.menu)) assert.match(k, /^\d+$/);
      }
      checked++;
    }
    const infoFile = path.join(dir, 'info.txt');
    if (existsSync(infoFile)) {
      const info = parseV4l2Info(readFileSync(infoFile, 'utf8'));
      assert.ok(info.driver && info.card, `${rel(infoFile)}: driver and card`);
      assert.ok(info.capabilities.length > 0, `${rel(infoFile)}: capabilities`);
      checked++;
    }
  }
  assert.ok(checked >= 40, `checked ${checked} files`);
});

test('every rpicam listing parses to cameras with modes', () => {
  const dirs = folders(path.join(FIXTURES, 'rpicam'));
  assert.ok(dirs.length >= 4);
  for (const dir of dirs) {
    const text = readFileSync(path.join(dir, 'list-cameras.txt'), 'utf8');
    const { cameras } = parseRpicamListCameras(text);
    assert.equal(cameras.length, (text.match(/^\d+ : /gm) ?? []).length, `${rel(dir)}: cameras`);
    for (const cam of cameras) {
      assert.match(cam.sensor, /^(imx|ov)\w+/, `${rel(dir)}: sensor`);
      assert.match(cam.path, /^\/base\//, `${rel(dir)}: path`);
      assert.ok(cam.modes.length > 0, `${rel(dir)}: modes`);
      for (const m of cam.modes) {
        assert.ok(m.bit_depth === 8 || m.bit_depth === 10 || m.bit_depth === 12, `${rel(dir)}: bit depth ${m.bit_depth}`);
        assert.ok(m.width <= (cam.pixel_array?.width ?? Infinity), `${rel(dir)}: mode inside the sensor`);
        if (m.crop) assert.ok(m.crop[0] + m.crop[2] <= (cam.pixel_array?.width ?? Infinity));
      }
    }
  }
});

test('every udev dump parses to properties', () => {
  for (const dir of folders(path.join(FIXTURES, 'udev'))) {
    const { properties } = parseUdevInfo(readFileSync(path.join(dir, 'udevadm-info.txt'), 'utf8'));
    assert.equal(properties.SUBSYSTEM, 'video4linux', rel(dir));
    assert.match(properties.DEVNAME ?? '', /^\/dev\/video\d+$/, rel(dir));
    assert.match(properties.ID_V4L_CAPABILITIES ?? '', /^:(\w+:)+$/, rel(dir));
  }
});
