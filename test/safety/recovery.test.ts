import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { silentLogger } from '../../src/log/logger.ts';
import { openStoreWithRecovery } from '../../src/storage/open-store.ts';
import { reconcileAll } from '../../src/storage/reconcile.ts';
import { rigcamBin } from '../helpers/cli.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { ffprobeCount, sleep, startTestBox } from '../runtime/runtime-helpers.ts';

type FrameRowDb = { frame_index: number; capture_us: number; pts: number; keyframe: number };

describe('recovery', () => {
  it('reconcile rebuilds missing frame rows from the file: same capture times as the lost rows', async () => {
    const t = await startTestBox({ cameras: 1 });
    const r = await t.box.handleCommand('start_recording', { session_prefix: 'rc' }, { source: 'api' });
    assert.equal(r.ok, true, r.error);
    await sleep(2000);
    const stop = await t.box.handleCommand('stop_recording', {}, { source: 'api' });
    const id = (stop.data!.recordings as Array<{ recording_id: number }>)[0]!.recording_id;
    const original = t.store.frames(id);
    // What a kill -9 leaves: state still 'recording', the last rows never flushed, the CSV cut short.
    t.db.prepare('DELETE FROM frames WHERE recording_id = ? AND frame_index > 12').run(id);
    t.db.prepare("UPDATE recordings SET state = 'recording', frame_count = 12 WHERE id = ?").run(id);
    const rec = t.store.recording(id)!;
    const csv = path.join(t.root, rec.csv_path);
    writeFileSync(csv, readFileSync(csv, 'utf8').split('\n').slice(0, 8).join('\n') + '\n');
    const reports = await reconcileAll(t.store, t.root, silentLogger());
    assert.equal(reports.length, 1);
    assert.equal(reports[0]!.rowsRebuilt, original.length - 12);
    const after = t.store.recording(id)!;
    assert.equal(after.state, 'interrupted');
    assert.equal(after.frame_count, original.length);
    assert.equal(ffprobeCount(path.join(t.root, after.path)), original.length);
    const rebuilt = t.store.frames(id);
    assert.equal(rebuilt.length, original.length);
    for (let i = 0; i < original.length; i++) {
      assert.ok(Math.abs(rebuilt[i]!.capture_us - original[i]!.capture_us) <= 1, `capture time of frame ${i + 1}`);
      assert.equal(rebuilt[i]!.pts, original[i]!.pts);
      assert.equal(rebuilt[i]!.keyframe, original[i]!.keyframe);
    }
    assert.ok(rebuilt.slice(12).every((f) => f.flags.includes('recovered')), 'rebuilt rows are flagged');
    assert.equal(readFileSync(csv, 'utf8').trim().split('\n').length - 1, original.length, 'CSV rewritten whole');
    await t.close();
  });

  it('kill -9 of rigcam mid-trial: on restart the recording is reconciled, interrupted, playable, nothing lost', async () => {
    const dir = tmpDir();
    const cfg = path.join(dir, 'rigcam.yaml');
    writeFileSync(cfg, `data_dir: ${dir}\nhttp:\n  port: 0\ncameras:\n  - id: top\n    width: 320\n    height: 240\n    fps: 30\n`);
    const first = spawn(process.execPath, [rigcamBin, 'serve', '--demo', '60', '--config', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    first.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const started = Date.now();
    while (!out.includes('"recording_started"')) {
      if (Date.now() - started > 20_000) throw new Error(`no recording_started: ${out}`);
      await sleep(100);
    }
    await sleep(3000);
    first.kill('SIGKILL');
    await new Promise((r) => first.on('close', r));
    await sleep(300); // the orphaned ffmpeg exits on its broken pipe
    // Before restart: the database still says recording.
    let db = new Database(path.join(dir, 'rigcam.db'), { readonly: true });
    const before = db.prepare('SELECT * FROM recordings').get() as { id: number; state: string; path: string; frame_count: number };
    const rowsBefore = (db.prepare('SELECT COUNT(*) n FROM frames').get() as { n: number }).n;
    db.close();
    assert.equal(before.state, 'recording');
    const file = path.join(dir, 'recordings', before.path);
    const inFile = ffprobeCount(file);
    assert.ok(inFile >= 80, `frames on disk before restart: ${inFile}`);

    const second = spawn(process.execPath, [rigcamBin, 'serve', '--config', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out2 = '';
    second.stdout.on('data', (d: Buffer) => (out2 += d.toString()));
    const t2 = Date.now();
    while (!out2.includes('rigcam serving')) {
      if (Date.now() - t2 > 20_000) throw new Error(`second start did not serve: ${out2}`);
      await sleep(100);
    }
    second.kill('SIGTERM');
    assert.equal(await new Promise((r) => second.on('close', r)), 0);
    assert.match(out2, /reconciled interrupted recording/);

    db = new Database(path.join(dir, 'rigcam.db'), { readonly: true });
    const rec = db.prepare('SELECT * FROM recordings WHERE id = ?').get(before.id) as { state: string; frame_count: number; stop_reason: string; csv_path: string };
    const rows = db.prepare('SELECT frame_index, capture_us, pts, keyframe FROM frames WHERE recording_id = ? ORDER BY frame_index').all(before.id) as FrameRowDb[];
    const trial = db.prepare('SELECT state FROM trials').get() as { state: string };
    db.close();
    assert.equal(rec.state, 'interrupted');
    assert.match(rec.stop_reason, /reconciled/);
    assert.equal(trial.state, 'interrupted');
    assert.equal(rec.frame_count, ffprobeCount(file), 'the database counts the frames the file plays');
    assert.ok(rec.frame_count >= inFile, 'nothing recorded before the kill is missing');
    assert.equal(rows.length, rec.frame_count);
    assert.ok(rows.length >= rowsBefore, 'no logged row was lost');
    for (let i = 1; i < rows.length; i++) assert.ok(rows[i]!.capture_us > rows[i - 1]!.capture_us, `capture times increase at ${i}`);
    const csvLines = readFileSync(path.join(dir, 'recordings', rec.csv_path), 'utf8').trim().split('\n');
    assert.equal(csvLines.length - 1, rec.frame_count);
  });

  it('a corrupt database is kept aside and a new one is rebuilt from the recordings on disk', async () => {
    const t = await startTestBox({ cameras: 2 });
    for (const trial of [1, 2]) {
      const r = await t.box.handleCommand('start_recording', { session_prefix: 'cor', trial_number: trial, trial_label: `L${trial}, "quoted"` }, { source: 'api' });
      assert.equal(r.ok, true, r.error);
      await sleep(1000);
      await t.box.handleCommand('stop_recording', {}, { source: 'api' });
    }
    const originals = t.db.prepare('SELECT path, frame_count FROM recordings ORDER BY path').all() as Array<{ path: string; frame_count: number }>;
    const firstRows = t.store.frames(1);
    const dbFile = path.join(t.config.data_dir, 'rigcam.db');
    await t.close();
    // Scribble over the header and the first pages.
    const fd = openSync(dbFile, 'r+');
    writeSync(fd, Buffer.alloc(8192, 0x5a), 0, 8192, 0);
    closeSync(fd);

    const opened = await openStoreWithRecovery(dbFile, t.root, silentLogger());
    assert.ok(opened.quarantined && existsSync(opened.quarantined), 'the corrupt database is kept');
    assert.ok(readdirSync(t.config.data_dir).some((f) => f.startsWith('rigcam.db.corrupt-')), 'kept beside the new one');
    assert.equal(opened.rebuilt, 4);
    // The rebuilt store is read through its own connection: the store keeps its connection to itself.
    const raw = new Database(dbFile, { readonly: true });
    const rebuilt = raw.prepare('SELECT path, frame_count, state FROM recordings ORDER BY path').all() as Array<{ path: string; frame_count: number; state: string }>;
    assert.deepEqual(rebuilt.map((r) => [r.path, r.frame_count]), originals.map((r) => [r.path, r.frame_count]));
    for (const r of rebuilt) {
      assert.equal(r.state, 'complete');
      assert.equal(ffprobeCount(path.join(t.root, r.path)), r.frame_count);
    }
    const trials = raw.prepare('SELECT number, label FROM trials ORDER BY number').all() as Array<{ number: number; label: string }>;
    assert.deepEqual(trials, [{ number: 1, label: 'L1, "quoted"' }, { number: 2, label: 'L2, "quoted"' }], 'labels read back from the CSV, commas and quotes too');
    const id = (raw.prepare('SELECT id FROM recordings WHERE path = ?').get(originals[0]!.path) as { id: number }).id;
    const rows = opened.store.frames(id);
    assert.equal(rows.length, firstRows.length);
    assert.equal(rows[5]!.capture_us, firstRows[5]!.capture_us, 'frame timing restored from the CSV');
    raw.close();
    opened.store.close();
  });
});
