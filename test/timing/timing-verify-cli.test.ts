import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { runTiming } from '../../src/cli/timing-command.ts';
import { runVerify } from '../../src/cli/verify-command.ts';
import { parseConfig } from '../../src/config/load.ts';
import { splitCsvLine } from '../../src/timing/csv-format.ts';
import { secondsToUs } from '../../src/recording/verify.ts';
import { runCli } from '../helpers/cli.ts';
import { makeTestTs } from '../helpers/ffmpeg-ts.ts';
import { tmpDir } from '../helpers/tmp.ts';

interface CsvRow {
  frameIndex: number;
  captureUs: number;
  wallUs: number;
  pts: number;
}

/** The recording's own timing CSV, by column name. */
function readRecordingCsv(file: string): { header: string[]; lines: string[]; rows: CsvRow[] } {
  const lines = readFileSync(file, 'utf8').trim().split('\n');
  const header = splitCsvLine(lines[0]!);
  const col = (n: string): number => header.indexOf(n);
  const ptsCol = col('pts_90k') >= 0 ? col('pts_90k') : col('video_pts');
  const rows = lines.slice(1).map((l) => {
    const f = splitCsvLine(l);
    return { frameIndex: Number(f[col('frame_index')]), captureUs: Number(f[col('capture_us')]), wallUs: secondsToUs(f[col('record_time_unix')]!), pts: Number(f[ptsCol]) };
  });
  return { header, lines, rows };
}

function parseTimingOutput(text: string): Array<{ frameIndex: number; captureUs: number; wallUs: number; pts: number }> {
  const lines = text.trim().split('\n');
  assert.equal(lines[0], 'frame_index,capture_us,wall_us,pts');
  return lines.slice(1).map((l) => {
    const [a, b, c, d] = l.split(',');
    return { frameIndex: Number(a), captureUs: Number(b), wallUs: Number(c), pts: Number(d) };
  });
}

/** `rigcam verify` in this process (the CLI itself is run by the first tests): exit code and stdout. */
async function verifyHere(target: string, data: string): Promise<{ code: number; stdout: string }> {
  const r = await runVerify({ target, data }, parseConfig({}));
  return { code: r.ok ? 0 : 1, stdout: r.lines.join('\n') + '\n' };
}

describe('rigcam timing and rigcam verify on a real recording', () => {
  const data = tmpDir();
  let rec: { recording_id: number; path: string; csv: string; db: string; frames: number; mp4: string };
  let csv: ReturnType<typeof readRecordingCsv>;

  /** A copy of the whole data folder, to damage without touching the original. */
  function copyData(): { dir: string; ts: string; csv: string; db: string } {
    const dir = tmpDir();
    cpSync(data, dir, { recursive: true });
    const rel = path.relative(data, rec.path);
    return { dir, ts: path.join(dir, rel), csv: path.join(dir, rel).replace(/\.ts$/, '.csv'), db: path.join(dir, 'rigcam.db') };
  }

  before(async () => {
    const r = await runCli(['record', '--source', 'test', '--duration', '3', '--session', 'sei1', '--size', '320x240', '--fps', '30', '--data', data, '--mp4']);
    assert.equal(r.code, 0, r.stderr);
    rec = JSON.parse(r.stdout) as typeof rec;
    assert.ok(rec.mp4 && existsSync(rec.mp4), 'the .mp4 was made');
    csv = readRecordingCsv(rec.csv);
    assert.equal(csv.rows.length, rec.frames);
  });

  it('timing FILE.ts gives exactly the CSV\'s frame indexes, capture and wall times and PTS, every frame', async () => {
    const r = await runCli(['timing', rec.path]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(parseTimingOutput(r.stdout), csv.rows);
    // ... and the database's.
    const db = new Database(rec.db, { readonly: true });
    const rows = db.prepare('SELECT frame_index, capture_us, wall_us FROM frames WHERE recording_id = ? ORDER BY frame_index').all(rec.recording_id) as Array<{ frame_index: number; capture_us: number; wall_us: number }>;
    db.close();
    assert.deepEqual(
      parseTimingOutput(r.stdout).map((f) => [f.frameIndex, f.captureUs, f.wallUs]),
      rows.map((x) => [x.frame_index, x.capture_us, x.wall_us]),
    );
  });

  it('timing FILE.mp4 (the remux) gives exactly the same capture and wall times', async () => {
    const r = await runCli(['timing', rec.mp4]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      parseTimingOutput(r.stdout).map((f) => [f.frameIndex, f.captureUs, f.wallUs]),
      csv.rows.map((x) => [x.frameIndex, x.captureUs, x.wallUs]),
    );
  });

  it('timing --csv OUT writes a new file and never overwrites one', async () => {
    const out = path.join(tmpDir(), 'times.csv');
    let printed = '';
    const r = await runTiming({ file: rec.path, csv: out }, (s) => (printed += s));
    assert.deepEqual(r, { frames: rec.frames, withoutSei: 0 });
    assert.equal(printed, '');
    assert.deepEqual(parseTimingOutput(readFileSync(out, 'utf8')), csv.rows);
    writeFileSync(out, 'keep me');
    await assert.rejects(runTiming({ file: rec.path, csv: out }, () => undefined), /EEXIST/);
    assert.equal(readFileSync(out, 'utf8'), 'keep me');
  });

  it('timing on a video without rigcam SEI prints positions with empty times and exits 1; bad input is refused', async () => {
    const dir = tmpDir();
    const plain = path.join(dir, 'plain.ts');
    writeFileSync(plain, makeTestTs({ frames: 10 }));
    const r = await runCli(['timing', plain]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /10 of 10 frames carry no rigcam timing/);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 11);
    assert.match(lines[1]!, /^1,,,\d+$/);
    await assert.rejects(runTiming({ file: path.join(dir, 'nope.ts') }, () => undefined), /no such file/);
    const garbage = path.join(dir, 'garbage.mp4');
    writeFileSync(garbage, 'not a video at all');
    await assert.rejects(runTiming({ file: garbage }, () => undefined), /ffmpeg could not read/);
  });

  it('verify RECORDING_ID and verify FILE say OK on an untouched recording (the .ts and the .mp4)', async () => {
    const byId = await runCli(['verify', String(rec.recording_id), '--data', data]);
    assert.equal(byId.code, 0, byId.stdout + byId.stderr);
    assert.match(byId.stdout, new RegExp(`^OK recording ${rec.recording_id} .*: ${rec.frames} frames; file, SEI, CSV and database agree; SHA-256 of 4 file\\(s\\) match\\n$`));
    for (const f of [rec.path, rec.mp4]) {
      const byFile = await verifyHere(f, data);
      assert.equal(byFile.code, 0, byFile.stdout);
      assert.match(byFile.stdout, /^OK recording /);
    }
  });

  it('verify of a recording whose .ts was removed by hand after the remux checks its .mp4 frame by frame, and names the .ts hashed at close as gone', async () => {
    const c = copyData();
    rmSync(c.ts);
    const r = await verifyHere(String(rec.recording_id), c.dir);
    // The only disagreement is the missing file (keep_ts: false drops its checksum; a hand removal does not).
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stdout, /checksum: video sei1\/sei1_trial001_cam0\.ts: ENOENT\n/);
    assert.match(r.stdout, /FAILED recording 1 .*: 1 disagreement\(s\)/);
  });

  it('verify names the frame whose CSV capture time was edited', async () => {
    const c = copyData();
    const lines = readFileSync(c.csv, 'utf8').split('\n');
    const capCol = csv.header.indexOf('capture_us');
    const f = splitCsvLine(lines[10]!); // frame 10
    const orig = Number(f[capCol]);
    f[capCol] = String(orig + 1);
    lines[10] = f.join(',');
    writeFileSync(c.csv, lines.join('\n'));
    const r = await runCli(['verify', String(rec.recording_id), '--data', c.dir]);
    assert.equal(r.code, 1, r.stdout);
    const problems = r.stdout.trim().split('\n').filter((l) => l.startsWith('frame '));
    // The .ts and the .mp4 are both checked against the CSV: the one edited frame, twice, nothing else.
    assert.ok(problems.length >= 1 && problems.every((l) => l.startsWith('frame 10: ')), r.stdout);
    assert.ok(problems.includes(`frame 10: capture_us differs: SEI ${orig}, CSV ${orig + 1}, database ${orig}`), r.stdout);
    assert.match(r.stdout, /FAILED recording \d+ .*disagreement/);
  });

  it('verify names the frame whose database row was deleted', async () => {
    const c = copyData();
    const db = new Database(c.db);
    db.prepare('DELETE FROM frames WHERE recording_id = ? AND frame_index = 20').run(rec.recording_id);
    db.close();
    const r = await verifyHere(String(rec.recording_id), c.dir);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stdout, /^frame 20: in the file, no row in the database$/m);
    assert.doesNotMatch(r.stdout, /^frame (?!20:)/m, 'only frame 20 is named');
  });

  it('verify says the file was cut in the middle of its last frame', async () => {
    const c = copyData();
    // Cut inside the last frame (not on a packet boundary): the last frame's bytes and the packet end show it.
    const csvLast = csv.lines.at(-1)!;
    const lastBytes = Number(splitCsvLine(csvLast)[csv.header.indexOf('bytes')]);
    const size = statSync(c.ts).size;
    truncateSync(c.ts, size - Math.floor(lastBytes / 2) - 100);
    const r = await verifyHere(c.ts, c.dir);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stdout, new RegExp(`ends inside a TS packet: truncated in frame ${rec.frames}`));
    assert.match(r.stdout, new RegExp(`^frame ${rec.frames}: bytes differs: file \\d+, CSV ${lastBytes}, database ${lastBytes} \\(the file is cut short in this frame\\)$`, 'm'));
  });

  it('verify of frames missing at the end of the file names them', async () => {
    const c = copyData();
    // Keep the first half of the file, cut on a packet boundary.
    const size = statSync(c.ts).size;
    truncateSync(c.ts, Math.floor(size / 2 / 188) * 188);
    const r = await verifyHere(String(rec.recording_id), c.dir);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^frames \d+–\d+: in the CSV, not in the file$/m);
    assert.match(r.stdout, /^frames \d+–\d+: in the database, not in the file$/m);
    assert.match(r.stdout, /^recording: the database counts \d+ frames, the file has \d+$/m);
  });

  it('verify of a file copied off the box checks it against its SEI and CSV', async () => {
    const dir = tmpDir();
    const ts = path.join(dir, 'copy.ts');
    copyFileSync(rec.path, ts);
    copyFileSync(rec.csv, path.join(dir, 'copy.csv'));
    const r = await verifyHere(ts, path.join(dir, 'nodata'));
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, /not in the database/);
    assert.match(r.stdout, new RegExp(`^OK .*copy\\.ts: ${rec.frames} frames; file, SEI and CSV agree$`, 'm'));
    // The same file with an edited wall time in its CSV.
    const lines = readFileSync(path.join(dir, 'copy.csv'), 'utf8').split('\n');
    const wallCol = csv.header.indexOf('record_time_unix');
    const f = splitCsvLine(lines[5]!);
    f[wallCol] = (Number(f[wallCol]) + 1).toFixed(6);
    lines[5] = f.join(',');
    writeFileSync(path.join(dir, 'copy.csv'), lines.join('\n'));
    const bad = await verifyHere(ts, path.join(dir, 'nodata'));
    assert.equal(bad.code, 1);
    assert.match(bad.stdout, /^frame 5: wall_us differs: SEI \d+, CSV \d+$/m);
  });

  it('verify refuses unknown recordings and missing files with a clear message', async () => {
    const r = await runCli(['verify', '9999', '--data', data]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no recording 9999/);
    const empty = tmpDir();
    mkdirSync(path.join(empty, 'x'));
    await assert.rejects(verifyHere('1', path.join(empty, 'x')), /no database at/);
    await assert.rejects(verifyHere(path.join(empty, 'missing.ts'), data), /no such file/);
    const bad = await runCli(['verify', '', '--data', data]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /RECORDING_ID or FILE is required/);
  });

  it('ffprobe sees the SEI on every frame of the recording', () => {
    const out = execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_frames', '-of', 'json', rec.path], { maxBuffer: 64 << 20 });
    const frames = (JSON.parse(out.toString()) as { frames: Array<{ side_data_list?: Array<{ side_data_type: string }> }> }).frames;
    assert.equal(frames.length, rec.frames);
    assert.ok(frames.every((fr) => (fr.side_data_list ?? []).some((s) => /User Data Unregistered/i.test(s.side_data_type))));
  });
});
