import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { CSV_HEADER, parseTimingCsv } from '../../src/timing/csv-format.ts';
import { runCli } from '../helpers/cli.ts';
import { tmpDir } from '../helpers/tmp.ts';

interface Probe {
  frames: Array<{ key_frame: number; pts: number }>;
}

function ffprobeFrames(file: string): Probe['frames'] {
  const out = execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'frame=key_frame,pts', '-of', 'json', file]);
  return (JSON.parse(out.toString()) as Probe).frames;
}

function countFrames(file: string): number {
  const out = execFileSync('ffprobe', ['-v', 'error', '-count_frames', '-select_streams', 'v:0', '-show_entries', 'stream=nb_read_frames', '-of', 'csv=p=0', file]);
  return Number.parseInt(out.toString().trim(), 10);
}

describe('rigcam record --source test', () => {
  const data = tmpDir();
  let result: Record<string, unknown>;

  it('records a 5 s trial and prints one JSON object', async () => {
    const r = await runCli(['record', '--source', 'test', '--duration', '5', '--session', 'mouse1', '--size', '640x360', '--fps', '30', '--data', data]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 1);
    result = JSON.parse(lines[0]!) as Record<string, unknown>;
    for (const k of ['recording_id', 'path', 'csv', 'db', 'frames', 'dropped', 'duration_s']) assert.ok(k in result, `missing ${k}`);
    assert.equal(result.path, path.join(data, 'recordings', 'mouse1', 'mouse1_trial001_cam0.ts'));
    assert.equal(result.dropped, 0);
    assert.ok(Math.abs((result.duration_s as number) - 5) < 1.1, `duration ${result.duration_s}`);
  });

  it('the file, the frames table and the CSV hold exactly the same frames', () => {
    const file = result.path as string;
    const n = countFrames(file);
    assert.equal(n, result.frames);
    // 5 s at 30 fps after the trigger, plus at most one GOP (1 s) back to the keyframe at or before it.
    assert.ok(n >= 150 && n <= 181, `frames ${n}`);
    const db = new Database(result.db as string, { readonly: true });
    const rows = db.prepare('SELECT * FROM frames WHERE recording_id = ? ORDER BY frame_index').all(result.recording_id) as Array<{
      frame_index: number;
      capture_us: number;
      interval_us: number | null;
      missing_before: number;
      pts: number;
      keyframe: number;
    }>;
    const rec = db.prepare('SELECT * FROM recordings WHERE id = ?').get(result.recording_id) as { state: string; frame_count: number; trigger_frame_index: number; trigger_mono_us: number };
    db.close();
    assert.equal(rows.length, n);
    assert.equal(rec.state, 'complete');
    assert.equal(rec.frame_count, n);
    const csv = readFileSync(result.csv as string, 'utf8').trim().split('\n');
    assert.equal(csv[0], CSV_HEADER);
    assert.ok(csv[0]!.startsWith('trial,module,device_id,label,record_time_unix,record_time_mono,frame_index,sensor_timestamp_ns,video_pts'), 'csv[0]!.startsWith(trial,module,device_id,label,record_time_');
    assert.equal(csv.length - 1, n);

    // First frame is a keyframe, in the file and in the timing.
    const probed = ffprobeFrames(file);
    assert.equal(probed[0]!.key_frame, 1);
    assert.equal(rows[0]!.keyframe, 1);
    // Capture times strictly increase and the intervals match 30 fps.
    for (let i = 1; i < rows.length; i++) {
      assert.ok(rows[i]!.capture_us > rows[i - 1]!.capture_us, `capture time not increasing at ${i}`);
      assert.ok(Math.abs(rows[i]!.interval_us! - 33_333) <= 2, `interval ${rows[i]!.interval_us} at ${i}`);
      assert.equal(rows[i]!.missing_before, 0);
    }
    // The PTS logged for each frame is the PTS in the file.
    assert.deepEqual(
      rows.map((r) => r.pts),
      probed.map((f) => f.pts),
    );
    // The trigger lands on the first frame captured at or after it.
    const t = rec.trigger_frame_index;
    assert.ok(rows[t - 1]!.capture_us >= rec.trigger_mono_us, 'rows[t - 1]!.capture_us >= rec.trigger_mono_us');
    if (t > 1) assert.ok(rows[t - 2]!.capture_us < rec.trigger_mono_us, 'rows[t - 2]!.capture_us < rec.trigger_mono_us');
    // CSV rows carry the same capture times (logger-compatible columns).
    const first = csv[1]!.split(',');
    assert.equal(first[0], '1');
    assert.equal(first[1], 'TestCameras');
    assert.equal(first[2], 'cam0');
    assert.equal(first[6], '1');
    assert.equal(first[7], `${rows[0]!.capture_us}000`);
    assert.equal(first[8], '1', "video_pts is the frame index, as RPi_Logger writes it");
    assert.equal(Number(first[csv[0]!.split(',').indexOf('pts_90k')]), rows[0]!.pts, 'pts_90k is the PTS in the .ts');
    assert.equal(first[5], (rows[0]!.capture_us / 1e6).toFixed(9));
  });

  it('numbers the next trial of the same session and never overwrites', async () => {
    const r = await runCli(['record', '--source', 'test', '--duration', '1', '--session', 'mouse1', '--size', '320x240', '--data', data]);
    assert.equal(r.code, 0, r.stderr);
    const res = JSON.parse(r.stdout) as { path: string; frames: number };
    assert.equal(path.basename(res.path), 'mouse1_trial002_cam0.ts');
    assert.equal(countFrames(res.path), res.frames);
  });

  it('remuxes to a verified MP4 with --mp4', async () => {
    const r = await runCli(['record', '--source', 'test', '--duration', '1', '--session', 'mp4s', '--size', '320x240', '--data', data, '--mp4']);
    assert.equal(r.code, 0, r.stderr);
    const res = JSON.parse(r.stdout) as { path: string; frames: number; mp4: string };
    assert.ok(res.mp4 && existsSync(res.mp4), 'res.mp4 && existsSync(res.mp4)');
    assert.equal(countFrames(res.mp4), res.frames);
    assert.ok(existsSync(res.path), 'the .ts is kept by default (keep_ts: true)');
    // Remuxed once (a second run used to delete the first's output) and registered in the database.
    const db = new Database(path.join(data, 'rigcam.db'), { readonly: true });
    const row = db.prepare('SELECT path, mp4_path FROM recordings WHERE path LIKE ?').get('mp4s/%') as { path: string; mp4_path: string | null };
    db.close();
    assert.equal(row.mp4_path && path.join(data, 'recordings', row.mp4_path), res.mp4);
    assert.deepEqual(readdirSync(path.dirname(res.mp4)).filter((f) => !/\.(ts|csv|json)$/.test(f)), [path.basename(res.mp4)], 'one .mp4, no temporary left');
    // The .mp4 keeps the .ts timestamps: its packets' PTS are the CSV's pts_90k, frame by frame.
    const probe = (f: string): number[] =>
      execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=pts', '-of', 'csv=p=0', f]).toString().split('\n').filter((l) => l.trim()).map((l) => Number(l.replace(/,$/, '')));
    const csvPts = parseTimingCsv(readFileSync(res.path.replace(/\.ts$/, '.csv'), 'utf8')).map((x) => x.pts);
    assert.deepEqual(probe(res.mp4), csvPts);
    assert.deepEqual(probe(res.path), csvPts);
  });

  for (const [args, why] of [
    [['--duration', '-1'], /duration must be more than 0/],
    [['--duration', 'abc'], /not a number/],
    [['--duration', '1', '--session', '../x'], /path separator|"\.\."/],
    [['--duration', '1', '--session', '/etc'], /absolute path|path separator/],
    [['--duration', '1', '--size', 'huge'], /size must look like/],
  ] as const) {
    it(`refuses ${args.join(' ')} and writes nothing`, async () => {
      const d = tmpDir();
      const r = await runCli(['record', '--source', 'test', ...args, '--data', d]);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, why);
      assert.deepEqual(readdirSync(d), []);
    });
  }

  it('refuses an unknown source', async () => {
    const d = tmpDir();
    const r = await runCli(['record', '--source', 'webcam', '--duration', '1', '--data', d]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /source/);
    assert.deepEqual(readdirSync(d), []);
  });
});
