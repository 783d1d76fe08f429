import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { tokenMatches } from '../../src/api/auth.ts';
import { parseRange } from '../../src/api/byte-range.ts';
import { MarkerPlacer } from '../../src/api/frames-csv.ts';
import { MpjpegParser } from '../../src/pipeline/mpjpeg-parser.ts';
import { CSV_HEADER } from '../../src/timing/csv-format.ts';

describe('parseRange', () => {
  it('answers single ranges, clamped to the file', () => {
    assert.deepEqual(parseRange(undefined, 100), { kind: 'full' }, 'no header');
    assert.deepEqual(parseRange('bytes=0-9', 100), { kind: 'partial', start: 0, end: 9 }, 'a-b');
    assert.deepEqual(parseRange('bytes=90-', 100), { kind: 'partial', start: 90, end: 99 }, 'a-');
    assert.deepEqual(parseRange('bytes=-10', 100), { kind: 'partial', start: 90, end: 99 }, 'suffix');
    assert.deepEqual(parseRange('bytes=-500', 100), { kind: 'partial', start: 0, end: 99 }, 'suffix longer than the file');
    assert.deepEqual(parseRange('bytes=50-5000', 100), { kind: 'partial', start: 50, end: 99 }, 'end clamped');
    assert.deepEqual(parseRange('bytes=99-99', 100), { kind: 'partial', start: 99, end: 99 }, 'last byte');
  });

  it('refuses what it cannot satisfy or understand', () => {
    for (const [h, size, why] of [
      ['bytes=100-', 100, /beyond/],
      ['bytes=5-1', 100, /before its start/],
      ['bytes=0-1,3-4', 100, /multiple/],
      ['bytes=-0', 100, /zero-length/],
      ['bytes=-', 100, /empty/],
      ['bytes=a-b', 100, /malformed/],
      ['items=0-1', 100, /malformed/],
      ['bytes=0x10-', 100, /malformed/],
      ['bytes=1e3-', 100, /malformed/],
      ['bytes=0-0', 0, /empty/],
      ['bytes=9999999999999999-', 100, /too large/],
    ] as const) {
      const r = parseRange(h, size);
      assert.equal(r.kind, 'unsatisfiable', `${h} on ${size} bytes`);
      assert.match((r as { reason: string }).reason, why, `${h} reason`);
    }
  });
});

describe('MarkerPlacer', () => {
  const ctx = { trial: 2, module: 'TestCameras', deviceId: 'cam0', label: 'a' };
  const frame = (i: number, captureUs: number): Parameters<MarkerPlacer['lines']>[2][number] => ({
    frame_index: i, capture_us: captureUs, wall_us: captureUs + 1e12, interval_us: i === 1 ? null : 100, missing_before: 0, pts: i * 9, keyframe: i === 1 ? 1 : 0, bytes: 10, flags: '',
  });
  const markersOf = (line: string): string => line.slice(line.lastIndexOf(',') + 1);

  it('puts a marker on the first frame captured at or after it, across pages, and frame-less lines before and after', () => {
    const p = new MarkerPlacer([
      { name: 'early', mono_us: 50 },
      { name: 'at-first', mono_us: 100 },
      { name: 'between', mono_us: 150 },
      { name: 'exact', mono_us: 300 },
      { name: 'also', mono_us: 300 },
      { name: 'page-edge', mono_us: 301 },
      { name: 'late', mono_us: 900 },
    ]);
    const page1 = p.lines(ctx, 1, [frame(1, 100), frame(2, 200), frame(3, 300)]);
    const page2 = p.lines(ctx, 1, [frame(4, 400)]);
    const tail = p.tail(ctx);
    assert.equal(page1.length, 4, 'a leading marker line plus three frames');
    assert.equal(page1[0], `2,TestCameras,cam0,a${','.repeat(CSV_HEADER.split(',').length - 4)},early`, 'leading line');
    assert.deepEqual(page1.slice(1).map(markersOf), ['at-first', 'between', 'exact;also'], 'page 1 markers');
    assert.deepEqual(page2.map(markersOf), ['page-edge'], 'page 2 marker');
    assert.equal(tail && markersOf(tail), 'late', 'tail');
    assert.equal(p.tail(ctx), null, 'tail only once');
    assert.equal(page1[1]!.split(',').length, CSV_HEADER.split(',').length + 1, 'frame line columns');
  });

  it('CSV-quotes marker labels that need it', () => {
    const p = new MarkerPlacer([{ name: 'a, "b"', mono_us: 10 }]);
    assert.ok(p.lines(ctx, 1, [frame(1, 10)])[0]!.endsWith(',"a, ""b"""'), 'quoted marker label');
  });
});

describe('MpjpegParser', () => {
  it('splits real ffmpeg mpjpeg output fed in arbitrary pieces', () => {
    const out = execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=64x48:rate=5', '-frames:v', '4', '-c:v', 'mjpeg', '-f', 'mpjpeg', 'pipe:1']);
    const jpeg = execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=64x48:rate=5', '-frames:v', '4', '-c:v', 'mjpeg', '-f', 'image2pipe', 'pipe:1']);
    for (const step of [1, 7, 100, out.length]) {
      const images: Buffer[] = [];
      const p = new MpjpegParser((j) => images.push(j));
      for (let i = 0; i < out.length; i += step) p.push(out.subarray(i, i + step));
      assert.equal(images.length, 4, `4 images with ${step}-byte pieces`);
      assert.ok(Buffer.concat(images).equals(jpeg), `same bytes as image2pipe with ${step}-byte pieces`);
    }
  });

  it('throws on output that is not mpjpeg', () => {
    const p = new MpjpegParser(() => undefined);
    assert.throws(() => p.push(Buffer.from('--x\r\nContent-type: image/jpeg\r\n\r\n')), /without Content-length/, 'no length');
    assert.throws(() => new MpjpegParser(() => undefined).push(Buffer.alloc(5000, 65)), /too long/, 'no header end');
  });
});

describe('tokenMatches', () => {
  it('compares whole tokens', () => {
    assert.equal(tokenMatches('0123456789abcdef', '0123456789abcdef'), true, 'same');
    assert.equal(tokenMatches('0123456789abcdeF', '0123456789abcdef'), false, 'case');
    assert.equal(tokenMatches('0123456789abcde', '0123456789abcdef'), false, 'prefix');
    assert.equal(tokenMatches('', '0123456789abcdef'), false, 'empty');
  });
});
