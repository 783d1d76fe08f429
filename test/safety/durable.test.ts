import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, closeSync, copyFileSync, existsSync, openSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import type { Config } from '../../src/config/schema.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { BoxRuntime } from '../../src/runtime/box-runtime.ts';
import { openStoreWithRecovery, DatabaseOpenError } from '../../src/storage/open-store.ts';
import { reconcileAll, rewriteCsv } from '../../src/storage/reconcile.ts';
import { readSidecar } from '../../src/storage/sidecar.ts';
import { remuxToMp4 } from '../../src/recording/remux.ts';
import type { Store } from '../../src/storage/store.ts';
import { readCsv } from '../../src/timing/csv-format.ts';
import { rigcamBin } from '../helpers/cli.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { ffprobeCount, sleep, startTestBox, type TestBox } from '../runtime/runtime-helpers.ts';

type Rec = { id: number; path: string; csv_path: string; frame_count: number; state: string; stop_reason: string | null; trial_id: number };

async function trial(t: { box: BoxRuntime }, p: Record<string, unknown>, ms = 1000, mark?: string): Promise<void> {
  const r = await t.box.handleCommand('start_recording', p, { source: 'api' });
  assert.equal(r.ok, true, r.error);
  await sleep(ms / 2);
  if (mark) assert.equal((await t.box.handleCommand('mark', { label: mark }, { source: 'api' })).ok, true);
  await sleep(ms / 2);
  assert.equal((await t.box.handleCommand('stop_recording', {}, { source: 'api' })).ok, true);
}

/** Every video under the root: the database row, the file's frames, the DB rows and the CSV rows all agree. */
function assertWhole(store: Store, dbFile: string, root: string): Rec[] {
  const raw = new Database(dbFile, { readonly: true });
  try {
    const recs = raw.prepare('SELECT * FROM recordings ORDER BY path').all() as Rec[];
    const videos = readdirSync(root, { recursive: true }).map(String).filter((f) => f.endsWith('.ts')).sort();
    assert.deepEqual(recs.map((r) => r.path), videos, 'every video file is registered, once');
    for (const r of recs) {
      const inFile = ffprobeCount(path.join(root, r.path));
      const rows = store.frames(r.id);
      const csv = readCsv(readFileSync(path.join(root, r.csv_path), 'utf8'));
      assert.equal(r.frame_count, inFile, `${r.path}: frame_count = file frames`);
      assert.equal(rows.length, inFile, `${r.path}: DB rows = file frames`);
      assert.equal(csv.rows.length, inFile, `${r.path}: CSV rows = file frames`);
      assert.deepEqual(rows.map((x) => x.frame_index), Array.from({ length: inFile }, (_, i) => i + 1));
    }
    return recs;
  } finally {
    raw.close();
  }
}

/** A box on an existing data directory, opened the way `rigcam serve` opens it. */
async function reopen(config: Config, root: string): Promise<{ box: BoxRuntime; store: Store; close: () => Promise<void>; opened: Awaited<ReturnType<typeof openStoreWithRecovery>> }> {
  const opened = await openStoreWithRecovery(path.join(config.data_dir, 'rigcam.db'), root, silentLogger());
  const box = new BoxRuntime({ config, store: opened.store, log: silentLogger(), root });
  await box.initialize();
  return {
    box,
    store: opened.store,
    opened,
    close: async () => {
      await box.shutdown();
      opened.store.close();
    },
  };
}

/** Frame timing as recorded, per path (from the CSVs written while recording). */
function csvTiming(root: string, recs: Array<{ path: string; csv_path: string }>): Map<string, string[]> {
  return new Map(recs.map((r) => [r.path, readCsv(readFileSync(path.join(root, r.csv_path), 'utf8')).rows.map((x) => `${x.frame_index}:${x.capture_us}:${x.pts_90k ?? x.video_pts}:${x.flags}`)]));
}

describe('durable metadata', () => {
  for (const fault of ['deleted', 'emptied', 'rolled back'] as const) {
    it(`database ${fault}: the files are adopted, nothing recorded is missing, the next trial number is free and starts`, async () => {
      const t = await startTestBox({ cameras: 1 });
      const dbFile = path.join(t.config.data_dir, 'rigcam.db');
      const copy = path.join(t.config.data_dir, 'before-trial-2.db');
      await trial(t, { session_prefix: 'adopt', trial_label: 'first, "one"', metadata: { dose: 3 } });
      await t.db.backup(copy);
      await trial(t, { session_prefix: 'adopt', trial_label: 'second' }, 1000, 'tone');
      const before = t.db.prepare('SELECT path, csv_path, frame_count FROM recordings ORDER BY path').all() as Array<{ path: string; csv_path: string; frame_count: number }>;
      const timing = csvTiming(t.root, before);
      await t.close();
      assert.equal(before.length, 2);
      for (const ext of ['-wal', '-shm']) assert.equal(existsSync(dbFile + ext), false, 'closed cleanly');
      if (fault === 'deleted') unlinkSync(dbFile);
      else if (fault === 'emptied') truncateSync(dbFile, 0);
      else copyFileSync(copy, dbFile);

      const b = await reopen(t.config, t.root);
      assert.equal(b.opened.rebuilt, fault === 'rolled back' ? 1 : 2, 'the recordings the database did not know were adopted');
      assert.deepEqual(b.opened.failed, []);
      const recs = assertWhole(b.store, dbFile, t.root);
      assert.deepEqual(recs.map((r) => [r.path, r.frame_count]), before.map((r) => [r.path, r.frame_count]), 'the same recordings, the same frames');
      assert.deepEqual(csvTiming(t.root, recs), timing, 'frame timing exactly as recorded (flags too)');
      for (const r of recs) assert.equal(r.state, 'complete', `${r.path}: sidecar says complete and the CSV agrees with the file`);
      const sess = b.store.sessionByName('adopt')!;
      const trials = b.store.trialsOfSession(sess.id);
      assert.deepEqual(trials.map((x) => [x.number, x.label, x.state]), [[1, 'first, "one"', 'complete'], [2, 'second', 'complete']]);
      assert.deepEqual(JSON.parse(trials[0]!.metadata), { dose: 3 }, 'trial metadata from the database or the sidecar');
      const rec1 = b.store.recordingByPath(recs[0]!.path)!;
      assert.ok(rec1.mono0_us > 0 && Math.abs(rec1.wall0_us - Date.now() * 1000) < 120e6, 'clock pair from the sidecar, not the PTS');

      // The next trial of the session gets the next free number and records.
      const r = await b.box.handleCommand('start_recording', { session_prefix: 'adopt' }, { source: 'api' });
      assert.equal(r.ok, true, r.error);
      assert.equal(r.data!.trial, 3);
      await sleep(600);
      await b.box.handleCommand('stop_recording', {}, { source: 'api' });
      await b.close();
      const s = new Database(dbFile, { readonly: true });
      const n = (s.prepare('SELECT COUNT(*) AS n FROM recordings').get() as { n: number }).n;
      s.close();
      assert.equal(n, 3);
      const c = await reopen(t.config, t.root);
      assert.equal(c.opened.rebuilt, 0, 'nothing adopted twice');
      assertWhole(c.store, dbFile, t.root);
      await c.close();
    });
  }

  it('a recording the database never finished (rows lost by a power cut, sidecar left at "recording", torn last frame): adopted interrupted, flags kept', async () => {
    const t = await startTestBox({ cameras: 1 });
    const dbFile = path.join(t.config.data_dir, 'rigcam.db');
    const r = await t.box.handleCommand('start_recording', { session_prefix: 'cut', trial_label: 'x' }, { source: 'api' });
    assert.equal(r.ok, true, r.error);
    await sleep(500);
    await t.box.handleCommand('pause_recording', {}, { source: 'api' });
    await sleep(1500);
    await t.box.handleCommand('resume_recording', {}, { source: 'api' });
    await sleep(500);
    await t.box.handleCommand('stop_recording', {}, { source: 'api' });
    const rec = t.db.prepare('SELECT * FROM recordings').get() as Rec;
    const ts = path.join(t.root, rec.path);
    const framesBefore = ffprobeCount(ts);
    const flags = t.store.frames(rec.id).map((f) => f.flags);
    assert.ok(flags.some((f) => /paused|resume/.test(f)), `the trial has pause flags to keep: ${[...new Set(flags)].join('|')}`);
    await t.close();
    unlinkSync(dbFile);
    // What a power cut leaves: the sidecar never completed, the CSV cut mid-line, the video cut inside a packet.
    const sc = path.join(t.root, rec.path.replace(/\.ts$/, '.json'));
    const side = JSON.parse(readFileSync(sc, 'utf8')) as Record<string, unknown>;
    writeFileSync(sc, JSON.stringify({ ...side, state: 'recording', frames: null, dropped: null, stop_reason: null, stopped_at: null }));
    const csvFile = path.join(t.root, rec.csv_path);
    const text = readFileSync(csvFile, 'utf8');
    writeFileSync(csvFile, text.slice(0, Math.floor(text.length * 0.8)));
    truncateSync(ts, statSync(ts).size - 100); // the last frame's last 100 bytes never reached the disk
    const b = await reopen(t.config, t.root);
    assert.equal(b.opened.rebuilt, 1);
    const after = b.store.recordingByPath(rec.path)!;
    assert.equal(after.state, 'interrupted');
    assert.match(after.stop_reason!, /the recording never stopped.*torn last frame not counted/);
    assert.equal(after.frame_count, framesBefore - 1, 'the torn frame is not counted; nothing before it is missing');
    const rows = b.store.frames(after.id);
    assert.equal(rows.length, framesBefore - 1);
    assert.deepEqual(rows.map((f) => f.flags.replace(/ ?recovered/, '')), flags.slice(0, -1), 'paused/resume flags kept where the CSV had them');
    assert.equal(readCsv(readFileSync(csvFile, 'utf8')).rows.length, framesBefore - 1, 'CSV rewritten to match');
    assert.equal(readSidecar(ts)!.state, 'interrupted', 'the sidecar completed too');
    await b.close();
  });

  it('reconcile takes rows the database lost from the CSV as written (pause flags kept), rebuilds the rest from the file', async () => {
    const t = await startTestBox({ cameras: 1 });
    const r = await t.box.handleCommand('start_recording', { session_prefix: 'rcf' }, { source: 'api' });
    assert.equal(r.ok, true, r.error);
    await sleep(400);
    await t.box.handleCommand('pause_recording', {}, { source: 'api' });
    await sleep(1500);
    await t.box.handleCommand('resume_recording', {}, { source: 'api' });
    await sleep(600);
    const stop = await t.box.handleCommand('stop_recording', {}, { source: 'api' });
    const id = (stop.data!.recordings as Array<{ recording_id: number }>)[0]!.recording_id;
    const original = t.store.frames(id);
    const flagged = original.findIndex((f) => /paused|resume/.test(f.flags));
    assert.ok(flagged > 3, `a flagged frame after the first few: ${flagged}`);
    // A kill -9: the database lost every row after the third, the CSV kept all but the last two.
    t.db.prepare('DELETE FROM frames WHERE recording_id = ? AND frame_index > 3').run(id);
    t.db.prepare("UPDATE recordings SET state = 'recording' WHERE id = ?").run(id);
    const csv = path.join(t.root, t.store.recording(id)!.csv_path);
    writeFileSync(csv, readFileSync(csv, 'utf8').trimEnd().split('\n').slice(0, -2).join('\n') + '\n');
    const [rep] = await reconcileAll(t.store, t.root, silentLogger());
    assert.equal(rep!.rowsFromCsv, original.length - 5);
    const after = t.store.frames(id);
    assert.equal(after.length, original.length);
    assert.deepEqual(after.slice(0, -2).map((f) => [f.flags, f.capture_us]), original.slice(0, -2).map((f) => [f.flags, f.capture_us]), 'flags and times as recorded');
    assert.ok(after.slice(-2).every((f) => f.flags.includes('recovered')));
    await t.close();
  });

  it('an .mp4-only recording (keep_ts: false) is recognised and adopted with its CSV timing', async () => {
    const t = await startTestBox({ cameras: 1 });
    await trial(t, { session_prefix: 'mp', trial_label: 'm' });
    const rec = t.db.prepare('SELECT * FROM recordings').get() as Rec;
    const timing = csvTiming(t.root, [rec]).get(rec.path)!;
    const dbFile = path.join(t.config.data_dir, 'rigcam.db');
    await t.close();
    const r = await remuxToMp4(path.join(t.root, rec.path), rec.frame_count, { keepTs: false });
    assert.equal(r.error, null);
    assert.equal(r.tsDeleted, true);
    unlinkSync(dbFile);
    const b = await reopen(t.config, t.root);
    assert.equal(b.opened.rebuilt, 1);
    const mp4Rel = rec.path.replace(/\.ts$/, '.mp4');
    const got = b.store.recordingByVideo(mp4Rel)!;
    assert.equal(got.path, mp4Rel);
    assert.equal(got.mp4_path, mp4Rel);
    assert.equal(got.state, 'complete');
    assert.equal(got.frame_count, ffprobeCount(path.join(t.root, mp4Rel)));
    assert.deepEqual(b.store.frames(got.id).map((x) => `${x.frame_index}:${x.capture_us}:${x.pts}:${x.flags}`), timing, 'timing from the CSV, as recorded');
    await b.close();
  });

  it('a sidecar per recording: written at start (created exclusively), completed at stop', async () => {
    const t = await startTestBox({ cameras: 2 });
    await t.box.handleCommand('start_session', { session_prefix: 'side', subject: 'm7', metadata: { cage: 'B' } }, { source: 'api' });
    const r = await t.box.handleCommand('start_recording', { trial_label: 'with, "quotes"', metadata: { odor: 'A' } }, { source: 'api', triggerMonoUs: 123 });
    assert.equal(r.ok, true, r.error);
    const recs = r.data!.recordings as Array<{ path: string; recording_id: number }>;
    const during = readSidecar(path.join(t.root, recs[0]!.path))!;
    assert.equal(during.state, 'recording');
    assert.equal(during.owner.pid, process.pid);
    assert.equal(during.trial!.label, 'with, "quotes"');
    assert.deepEqual(during.trial!.metadata, { odor: 'A' });
    assert.equal(during.session.name, 'side');
    assert.equal(during.recording.camera_id, 'cam0');
    assert.equal(during.recording.trigger_mono_us, 123);
    await sleep(800);
    await t.box.handleCommand('stop_recording', {}, { source: 'api' });
    for (const x of recs) {
      const done = readSidecar(path.join(t.root, x.path))!;
      const row = t.store.recording(x.recording_id)!;
      assert.equal(done.state, 'complete');
      assert.equal(done.frames, row.frame_count);
      assert.equal(done.recording.mono0_us, row.mono0_us);
      assert.equal(done.recording.wall0_us, row.wall0_us);
      assert.equal(done.recording.encoder, row.encoder);
    }
    assert.deepEqual(readdirSync(path.join(t.root, 'side')).filter((f) => f.includes('.tmp')), [], 'no temporary file left');
    await t.close();
  });

  it('corrupt database (tables still readable): moved aside, full rebuild, markers, journal, metadata and offload marks salvaged', async () => {
    const t = await startTestBox({ cameras: 2 });
    await t.box.handleCommand('start_session', { session_prefix: 'cor', metadata: { subject: 'mouse, "7"' } }, { source: 'api' });
    await trial(t, { trial_label: 'L1, "quoted"', metadata: { k: 'v' } }, 1000, 'lick, "left"');
    await trial(t, { trial_label: 'L2' }, 1000, 'tone');
    const before = t.db.prepare('SELECT path, csv_path, frame_count FROM recordings ORDER BY path').all() as Array<{ path: string; csv_path: string; frame_count: number }>;
    const timing = csvTiming(t.root, before);
    t.store.markOffloaded([1]);
    const offloadedPath = t.store.recording(1)!.path;
    const events = (t.db.prepare('SELECT COUNT(*) AS n FROM events').get() as { n: number }).n;
    const pageSize = t.db.pragma('page_size', { simple: true }) as number;
    const framesRoot = (t.db.prepare("SELECT rootpage FROM sqlite_master WHERE name = 'frames'").get() as { rootpage: number }).rootpage;
    const dbFile = path.join(t.config.data_dir, 'rigcam.db');
    await t.close();
    // Scribble over the frames table's root page: quick_check fails, the other tables still read.
    const fd = openSync(dbFile, 'r+');
    writeSync(fd, Buffer.alloc(pageSize, 0x5a), 0, pageSize, (framesRoot - 1) * pageSize);
    closeSync(fd);

    const b = await reopen(t.config, t.root);
    assert.ok(b.opened.quarantined && existsSync(b.opened.quarantined), 'the corrupt database is kept');
    assert.equal(existsSync(`${dbFile}.rebuild`), false, 'the rebuild committed: no marker left');
    assert.equal(b.opened.rebuilt, 4);
    const recs = assertWhole(b.store, dbFile, t.root);
    assert.deepEqual(csvTiming(t.root, recs), timing, 'frame timing exactly as recorded');
    const sess = b.store.sessionByName('cor')!;
    assert.equal(JSON.parse(sess.metadata).subject, 'mouse, "7"', 'session metadata salvaged');
    const trials = b.store.trialsOfSession(sess.id);
    assert.deepEqual(trials.map((x) => [x.number, x.label, x.trigger_source]), [[1, 'L1, "quoted"', 'api'], [2, 'L2', 'api']]);
    assert.deepEqual(JSON.parse(trials[0]!.metadata), { k: 'v' });
    assert.deepEqual(b.store.markersOfTrial(trials[0]!.id).map((m) => m.name), ['lick, "left"'], 'markers salvaged, on their trial');
    assert.deepEqual(b.store.markersOfTrial(trials[1]!.id).map((m) => m.name), ['tone']);
    const raw = new Database(dbFile, { readonly: true });
    assert.ok((raw.prepare('SELECT COUNT(*) AS n FROM events').get() as { n: number }).n >= events, 'the journal salvaged');
    raw.close();
    assert.ok(b.store.recordingByPath(offloadedPath)!.offloaded_at, 'offload mark salvaged (retention relies on it)');
    await b.close();
  });

  it('unreadable database with labels holding commas, quotes and line breaks: rebuilt from sidecars and CSVs alone', async () => {
    const t = await startTestBox({ cameras: 1 });
    await trial(t, { session_prefix: 'nl', trial_label: 'a, "b"' });
    await trial(t, { session_prefix: 'nl', trial_label: 'c' });
    // Trial 2 as an older rigcam (or the Pi logger) left it: no sidecar, a label with a line break in its CSV.
    const rec2 = t.db.prepare('SELECT * FROM recordings WHERE trial_id = 2').get() as Rec;
    t.db.prepare('UPDATE trials SET label = ? WHERE id = 2').run('two\nlines, "q"');
    rewriteCsv(t.store, t.root, t.store.recording(rec2.id)!);
    unlinkSync(path.join(t.root, rec2.path.replace(/\.ts$/, '.json')));
    const dbFile = path.join(t.config.data_dir, 'rigcam.db');
    await t.close();
    const fd = openSync(dbFile, 'r+');
    writeSync(fd, Buffer.alloc(8192, 0x5a), 0, 8192, 0);
    closeSync(fd);
    const b = await reopen(t.config, t.root);
    assert.ok(b.opened.quarantined);
    assert.equal(b.opened.rebuilt, 2);
    assertWhole(b.store, dbFile, t.root);
    const sess = b.store.sessionByName('nl')!;
    assert.deepEqual(b.store.trialsOfSession(sess.id).map((x) => [x.number, x.label, x.state]), [[1, 'a, "b"', 'complete'], [2, 'two\nlines, "q"', 'complete']]);
    await b.close();
  });

  it('a rebuild that fails is retried at the next start (marker), and one unreadable file does not stop the others', async () => {
    const t = await startTestBox({ cameras: 1 });
    await trial(t, { session_prefix: 'rt' });
    await trial(t, { session_prefix: 'rt' });
    const dbFile = path.join(t.config.data_dir, 'rigcam.db');
    const recs = t.db.prepare('SELECT path FROM recordings ORDER BY path').all() as Array<{ path: string }>;
    await t.close();
    const fd = openSync(dbFile, 'r+');
    writeSync(fd, Buffer.alloc(8192, 0x5a), 0, 8192, 0);
    closeSync(fd);
    // One video unreadable (as root, a directory in its place is what still fails to read).
    const bad = path.join(t.root, recs[0]!.path);
    const keep = readFileSync(bad);
    rmSync(bad);
    const { mkdirSync } = await import('node:fs');
    mkdirSync(bad);
    const b = await openStoreWithRecovery(dbFile, t.root, silentLogger());
    assert.equal(b.rebuilt, 1);
    assert.deepEqual(b.failed.map((f) => f.path), [recs[0]!.path], 'the failure is reported with its path');
    b.store.close();
    rmSync(bad, { recursive: true });
    writeFileSync(bad, keep);
    // A marker left by a rebuild that never committed: the next start salvages and adopts again.
    writeFileSync(`${dbFile}.rebuild`, JSON.stringify({ salvage_from: null }));
    const c = await openStoreWithRecovery(dbFile, t.root, silentLogger());
    assert.equal(c.rebuilt, 1, 'the file is adopted once it reads');
    assert.equal(existsSync(`${dbFile}.rebuild`), false);
    assertWhole(c.store, dbFile, t.root);
    c.store.close();
  });

  it('a permission error on the -wal file: clear error, the database is NOT moved', async () => {
    const dir = tmpDir();
    chmodSync(dir, 0o777);
    const dbFile = path.join(dir, 'rigcam.db');
    const db = new Database(dbFile);
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE x (a); INSERT INTO x VALUES (1);');
    copyFileSync(dbFile, `${dbFile}.copy`);
    db.close();
    chmodSync(dbFile, 0o666);
    writeFileSync(`${dbFile}-wal`, '');
    chmodSync(`${dbFile}-wal`, 0o600); // root's; the service user cannot open it
    const script = `import('${path.resolve('src/storage/open-store.ts')}').then(async (m) => { const { silentLogger } = await import('${path.resolve('src/log/logger.ts')}'); try { await m.openStoreWithRecovery('${dbFile}', '${dir}/recordings', silentLogger()); console.log('opened'); } catch (e) { console.log(e.constructor.name + ': ' + e.message); process.exit(3); } });`;
    const child = spawn(process.execPath, ['--import', 'tsx', '-e', script], { uid: 65534, gid: 65534, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise((r) => child.on('close', r));
    assert.equal(code, 3, out);
    assert.match(out, /DatabaseOpenError: cannot open the database .*rigcam\.db.*It was not moved/);
    assert.deepEqual(readdirSync(dir).filter((f) => f.includes('corrupt')), [], 'nothing moved aside');
    assert.ok(existsSync(dbFile) && statSync(dbFile).size > 0);
    assert.ok(DatabaseOpenError);
  });

  it('one writer per data directory: a second serve refuses with a clear message and changes nothing', async () => {
    const dir = tmpDir();
    const cfg = path.join(dir, 'rigcam.yaml');
    writeFileSync(cfg, `data_dir: ${dir}\nhttp:\n  port: 0\ncameras:\n  - id: top\n    width: 320\n    height: 240\n    fps: 30\n`);
    const first = spawn(process.execPath, [rigcamBin, 'serve', '--config', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    first.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const started = Date.now();
    while (!out.includes('rigcam serving')) {
      if (Date.now() - started > 20_000) throw new Error(`first serve did not start: ${out}`);
      await sleep(100);
    }
    const second = spawn(process.execPath, [rigcamBin, 'serve', '--config', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err2 = '';
    second.stderr.on('data', (d: Buffer) => (err2 += d.toString()));
    second.stdout.on('data', (d: Buffer) => (err2 += d.toString()));
    const code2 = await new Promise((r) => second.on('close', r));
    assert.equal(code2, 1);
    assert.match(err2, new RegExp(`in use by another rigcam process \\(pid ${first.pid}`));
    assert.doesNotMatch(err2, /rigcam serving/);
    first.kill('SIGKILL'); // the kernel drops the lock with the process
    await new Promise((r) => first.on('close', r));
    await sleep(300);
    const third = spawn(process.execPath, [rigcamBin, 'serve', '--config', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out3 = '';
    third.stdout.on('data', (d: Buffer) => (out3 += d.toString()));
    const t3 = Date.now();
    while (!out3.includes('rigcam serving')) {
      if (Date.now() - t3 > 20_000) throw new Error(`serve after a kill -9 did not start: ${out3}`);
      await sleep(100);
    }
    third.kill('SIGTERM');
    assert.equal(await new Promise((r) => third.on('close', r)), 0);
  });
});

export type { TestBox };
