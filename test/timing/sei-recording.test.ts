import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../../src/log/logger.ts';
import { monoNowUs } from '../../src/runtime/command-types.ts';
import { reconcileRecording } from '../../src/storage/reconcile.ts';
import type { RecordingRow } from '../../src/storage/store.ts';
import { forEachFileFrame, type FileFrame } from '../../src/pipeline/file-frames.ts';
import { splitCsvLine } from '../../src/timing/csv-format.ts';
import { secondsToUs, verifyRecording } from '../../src/recording/verify.ts';
import { ffprobeCount, sleep, startTestBox, type TestBox } from '../runtime/runtime-helpers.ts';

async function fileFrames(file: string): Promise<FileFrame[]> {
  const out: FileFrame[] = [];
  await forEachFileFrame(file, (f) => out.push(f));
  return out;
}

describe('every frame written to a recording carries its timing SEI: pre-roll, pause/resume, segments', () => {
  let t: TestBox;
  let recorded: RecordingRow[] = [];
  before(async () => {
    t = await startTestBox({
      cameras: 1,
      extra: {
        recording: { preroll_seconds: 1, stop_wait_ms: 1000 },
        supervisor: { restart_initial_ms: 200, restart_max_ms: 1000, healthy_after_ms: 5000 },
      },
    });
  });
  after(async () => t.close());

  it('file SEI = database rows = CSV rows, frame by frame, in every segment', async () => {
    await sleep(1500); // fill the pre-roll
    const start = await t.box.handleCommand('start_recording', { session_prefix: 'sei' }, { source: 'api', triggerMonoUs: monoNowUs() });
    assert.equal(start.ok, true, start.error);
    await sleep(1000);
    assert.equal((await t.box.handleCommand('pause', {}, { source: 'api', triggerMonoUs: monoNowUs() })).ok, true);
    await sleep(800);
    assert.equal((await t.box.handleCommand('resume_recording', {}, { source: 'api', triggerMonoUs: monoNowUs() })).ok, true);
    await sleep(1000);
    process.kill(t.box.cameras.get('cam0')!.stats()!.sourcePid!, 'SIGKILL'); // as a crash would
    await t.waitStatus('segment_started', () => true, 15_000);
    await sleep(1200);
    const stop = await t.box.handleCommand('stop_recording', {}, { source: 'api', triggerMonoUs: monoNowUs() });
    assert.equal(stop.ok, true, stop.error);
    const recs = (stop.data!.recordings as Array<{ recording_id: number }>).map((r) => t.store.recording(r.recording_id)!);
    assert.equal(recs.length, 2, 'two segments');
    recorded = recs;

    const flagsSeen = new Set<string>();
    for (const rec of recs) {
      const file = path.join(t.root, rec.path);
      const frames = await fileFrames(file);
      const rows = t.store.frames(rec.id);
      assert.ok(rows.length > 10);
      assert.equal(frames.length, rows.length, `${rec.path}: frames in file vs rows`);
      assert.equal(ffprobeCount(file), rows.length, `${rec.path} decodes with all its frames`);
      const csv = readFileSync(path.join(t.root, rec.csv_path), 'utf8').trim().split('\n');
      const col = Object.fromEntries(splitCsvLine(csv[0]!).map((n, i) => [n, i]));
      rows.forEach((row, i) => {
        const f = frames[i]!;
        assert.ok(f.sei, `${rec.path} frame ${i + 1} (${row.flags}) has its SEI`);
        assert.deepEqual(
          { frameIndex: f.sei.frameIndex, captureUs: f.sei.captureUs, wallUs: f.sei.wallUs },
          { frameIndex: row.frame_index, captureUs: row.capture_us, wallUs: row.wall_us },
          `${rec.path} frame ${i + 1}`,
        );
        const c = splitCsvLine(csv[i + 1]!);
        assert.equal(Number(c[col.capture_us!]), f.sei.captureUs);
        assert.equal(secondsToUs(c[col.record_time_unix!]!), f.sei.wallUs);
        assert.equal(f.bytes, row.bytes, 'the coded size without the SEI is what was logged');
        for (const flag of row.flags.split(' ')) if (flag) flagsSeen.add(flag);
      });
      const report = await verifyRecording({ videos: [file], csvFile: path.join(t.root, rec.csv_path), recording: rec, store: t.store });
      assert.deepEqual(report.problems, []);
      assert.equal(report.ok, true);
    }
    for (const flag of ['preroll', 'paused', 'resume', 'segment']) assert.ok(flagsSeen.has(flag), `a ${flag} frame was checked (saw ${[...flagsSeen]})`);
  });

  it('after a crash, rows rebuilt from the file take the exact times and sizes from its SEI', async () => {
    const rec = recorded[0]!;
    const before = t.store.frames(rec.id);
    // As a kill -9 leaves it: the last rows never reached the database, the recording still "recording".
    t.db.prepare('DELETE FROM frames WHERE recording_id = ? AND frame_index > 5').run(rec.id);
    t.db.prepare("UPDATE recordings SET state = 'recording' WHERE id = ?").run(rec.id);
    // ... and the CSV lost them too (rows the CSV still has are taken from it as written): only the file can tell.
    const csvPath = path.join(t.root, rec.csv_path);
    writeFileSync(csvPath, readFileSync(csvPath, 'utf8').split('\n').slice(0, 6).join('\n') + '\n');
    const report = await reconcileRecording(t.store, t.root, t.store.recording(rec.id)!, silentLogger());
    assert.equal(report.rowsRebuilt, before.length - 5);
    const after = t.store.frames(rec.id);
    // Flags are not in the file: a resume's gap is rebuilt as missing frames (the file cannot tell a pause).
    const resumed = new Set(before.filter((r) => r.flags.includes('resume')).map((r) => r.frame_index));
    assert.ok(resumed.size === 1 && [...resumed][0]! > 5, 'the rebuilt part includes the resume');
    const strip = (r: (typeof before)[number]) => ({ ...r, flags: '', missing_before: resumed.has(r.frame_index) ? 0 : r.missing_before });
    assert.deepEqual(after.slice(5).map(strip), before.slice(5).map(strip), 'capture, wall, pts, keyframe, bytes, intervals exactly as logged');
    assert.ok(after.slice(5).every((r) => r.flags.includes('recovered')));
    const report2 = await verifyRecording({ videos: [path.join(t.root, rec.path)], csvFile: path.join(t.root, rec.csv_path), recording: t.store.recording(rec.id)!, store: t.store });
    assert.deepEqual(report2.problems, [], 'the rewritten CSV, the rows and the SEI agree');
  });
});
