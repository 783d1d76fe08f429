import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CSV_HEADER, csvLine, parseTimingCsv, readCsv, splitCsvLine, type CsvContext } from '../../src/timing/csv-format.ts';
import type { FrameRow } from '../../src/timing/frame-row.ts';

const row = (index: number, over: Partial<FrameRow> = {}): FrameRow => ({
  recordingId: 7,
  index,
  captureUs: 1_000_000 + index * 33_333,
  wallUs: 1_795_951_345_185_765 + index * 33_333,
  intervalUs: index === 1 ? null : 33_333,
  missingBefore: index === 3 ? 2 : 0,
  pts: 900_000 + index * 3000,
  keyframe: index === 1,
  bytes: 1000 + index,
  flags: index === 1 ? 'preroll' : '',
  ...over,
});

describe('timing CSV format', () => {
  it('reads back what it writes, labels with commas, quotes and line breaks included', () => {
    for (const label of ['plain', 'a, b', 'say "hi"', 'two\nlines', '"', ',', '']) {
      const ctx: CsvContext = { trial: 3, module: 'USBCameras', deviceId: 'cam0', label };
      const rows = [row(1), row(2), row(3)];
      const text = [CSV_HEADER, ...rows.map((r) => csvLine(ctx, r))].join('\n') + '\n';
      const back = parseTimingCsv(text);
      assert.deepEqual(back, rows.map(({ recordingId: _, ...r }) => ({ ...r, label })), JSON.stringify(label));
    }
  });

  it('stops at a torn last line (a crash mid-write) and keeps the whole ones', () => {
    const ctx: CsvContext = { trial: 1, module: 'TestCameras', deviceId: 'c', label: 'x, "y"' };
    const whole = [row(1), row(2)].map((r) => csvLine(ctx, r));
    const torn = csvLine(ctx, row(3)).slice(0, 30);
    assert.equal(parseTimingCsv([CSV_HEADER, ...whole, torn].join('\n')).length, 2);
    const tornInQuote = csvLine(ctx, row(3)).slice(0, 12); // ends inside the quoted label
    assert.equal(parseTimingCsv([CSV_HEADER, ...whole, tornInQuote].join('\n')).length, 2);
  });

  it('reads RFC 4180 records by header name: quoted commas, quotes, line breaks, CRLF; a torn record is left out', () => {
    const t = readCsv('b,a\r\n"x, ""y""\nz",1\r\n2,"3"\n');
    assert.deepEqual(t.header, ['b', 'a']);
    assert.deepEqual(t.rows, [{ b: 'x, "y"\nz', a: '1' }, { b: '2', a: '3' }]);
    assert.equal(t.torn, false);
    assert.deepEqual(readCsv('a,b\n1,2\n3,').rows, [{ a: '1', b: '2' }], 'no line break: torn');
    assert.equal(readCsv('a,b\n1,2\n3,"4\n').torn, true, 'cut inside a quote');
    assert.deepEqual(readCsv('a,b\n1,2\n3\n').rows, [{ a: '1', b: '2' }], 'missing columns: torn');
    assert.deepEqual(readCsv('').rows, []);
  });

  it('reads columns by name: a CSV with its columns in another order (or one more column) reads the same', () => {
    const ctx: CsvContext = { trial: 1, module: 'TestCameras', deviceId: 'c', label: 'l' };
    const text = [CSV_HEADER, csvLine(ctx, row(1)), csvLine(ctx, row(2))].join('\n') + '\n';
    const t = readCsv(text);
    const cols = ['extra', ...[...t.header].reverse()];
    const moved = [cols.join(','), ...t.rows.map((r) => ['9', ...[...t.header].reverse().map((h) => JSON.stringify(r[h]))].join(','))].join('\n') + '\n';
    assert.deepEqual(parseTimingCsv(moved), parseTimingCsv(text));
  });

  it("keeps RPi_Logger's meaning: video_pts is the frame index, the 90 kHz PTS is pts_90k; older sidecars still read", () => {
    const ctx: CsvContext = { trial: 1, module: 'USBCameras', deviceId: 'c', label: 'l' };
    const header = CSV_HEADER.split(',');
    assert.deepEqual(header.slice(0, 9), ['trial', 'module', 'device_id', 'label', 'record_time_unix', 'record_time_mono', 'frame_index', 'sensor_timestamp_ns', 'video_pts']);
    const f = splitCsvLine(csvLine(ctx, row(5)));
    assert.equal(f[header.indexOf('video_pts')], '5');
    assert.equal(f[header.indexOf('frame_index')], '5');
    assert.equal(f[header.indexOf('pts_90k')], String(900_000 + 5 * 3000));
    // A sidecar written before pts_90k: video_pts held the PTS, and reconcile/rebuild must still read it.
    const old = ['trial,module,device_id,label,record_time_unix,record_time_mono,frame_index,sensor_timestamp_ns,video_pts,capture_us,interval_us,missing_before,keyframe,bytes,flags', '1,USBCameras,c,l,1.000000,1.000000000,1,1000000000,903000,1000000,,0,1,10,'].join('\n') + '\n';
    assert.equal(parseTimingCsv(old)[0]!.pts, 903000);
  });

  it('splits fields as csvLine quotes them', () => {
    assert.deepEqual(splitCsvLine('a,"b,c","d ""e""",,f'), ['a', 'b,c', 'd "e"', '', 'f']);
    assert.deepEqual(splitCsvLine('x,'), ['x', '']);
  });
});
