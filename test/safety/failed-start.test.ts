// A start that fails part-way removes what it made (#16): no orphan .ts/.csv/.json, no trial row left in
// `recording` (nor one blocking its number), the error reported, and the next start works. Files are created
// exclusively and never through a symlink: a symlink planted at the next recording's path or as the session folder
// is refused before anything is written, and nothing appears outside the recordings root.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statfsSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { rewriteCsv } from '../../src/storage/reconcile.ts';
import type { RecordingRow } from '../../src/storage/store.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { sleep, startTestBox, type TestBox } from '../runtime/runtime-helpers.ts';

const api = { source: 'api' as const };
const noDiskLevels = { min_free_to_start: 0, warn_free: 0, stop_free: 0 };

/** Every file under `dir`, relative, symlinks included (not followed). */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(path.relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

function rows(t: TestBox): { trials: Array<{ number: number; state: string }>; recordings: number } {
  return {
    trials: t.db.prepare('SELECT number, state FROM trials ORDER BY id').all() as Array<{ number: number; state: string }>,
    recordings: (t.db.prepare('SELECT COUNT(*) n FROM recordings').get() as { n: number }).n,
  };
}

/** A tmpfs with few inodes: a real "cannot create the file" (ENOSPC) at the Nth new file. Needs root, as CI runs. */
function inodeLimitedFs(): string {
  const dir = path.join(tmpDir('rigcam-inodes-'), 'rec');
  mkdirSync(dir);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m,nr_inodes=64', 'tmpfs', dir], { stdio: 'pipe' });
  after(() => {
    try {
      execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
    } catch {
      /* gone */
    }
  });
  return dir;
}

describe('a start that fails part-way removes what it made', () => {
  it('two cameras, the second cannot create its timing CSV (no inode left): nothing remains, the error is reported, the next start of the same trial works', async () => {
    assert.equal(process.getuid?.(), 0, 'this test mounts a tmpfs: run as root (CI does)');
    const rec = inodeLimitedFs();
    const t = await startTestBox({ cameras: 2, extra: { recordings_dir: rec, disk: noDiskLevels } });
    after(() => t.close());
    await sleep(1500); // both cameras have a stream (and a pre-roll ring)
    const session = path.join(rec, 'inodes');
    mkdirSync(session);
    // Leave exactly 4 free inodes: cam0's .ts, .csv, .json and cam1's .ts; cam1's .csv is refused ENOSPC.
    const fill = path.join(rec, 'fill');
    mkdirSync(fill);
    let n = 0;
    while (statfsSync(rec).ffree > 4) writeFileSync(path.join(fill, `f${n++}`), '');
    assert.equal(statfsSync(rec).ffree, 4);
    const before = filesUnder(session);
    const rowsBefore = rows(t);
    const from = t.statuses.length;

    const r = await t.box.handleCommand('start_recording', { session_prefix: 'inodes', trial_number: 1 }, api);
    assert.equal(r.ok, false, 'the start fails');
    assert.equal(r.code, 'unavailable');
    assert.match(r.error!, /could not start recording: .*ENOSPC/, r.error);
    assert.doesNotMatch(r.error!, /left on disk/, r.error);
    const err = t.statuses.slice(from).find((s) => s.status === 'error');
    assert.match(String(err?.data.message), /ENOSPC/, 'reported as an error status');
    assert.ok(!t.statuses.slice(from).some((s) => s.status === 'recording_started'));

    assert.deepEqual(filesUnder(session), before, 'no orphan .ts, .csv or .json of either camera');
    assert.deepEqual(rows(t), rowsBefore, 'no trial row (in recording or any state) and no recording row left');
    assert.equal(t.box.status().recording, false);
    for (const c of t.box.cameras.values()) assert.equal(c.recording, false, `${c.id} not recording`);

    // The disk has room again: the very same trial number starts and records on both cameras.
    rmSync(fill, { recursive: true });
    const again = await t.box.handleCommand('start_recording', { session_prefix: 'inodes', trial_number: 1 }, api);
    assert.equal(again.ok, true, again.error);
    await sleep(1000);
    const stop = await t.box.handleCommand('stop_recording', {}, api);
    assert.equal(stop.ok, true, stop.error);
    const recs = t.store.recordingsOfTrial(again.data!.trial_id as number);
    assert.deepEqual(
      recs.map((x) => [x.camera_id, x.state]),
      [
        ['cam0', 'complete'],
        ['cam1', 'complete'],
      ],
    );
    for (const x of recs) assert.ok(x.frame_count > 0, `${x.camera_id} recorded frames`);
    assert.deepEqual(rows(t).trials, [{ number: 1, state: 'complete' }]);
  });
});

describe('files are created exclusively, never through a symlink, never outside the root', () => {
  const outside = tmpDir('rigcam-outside-');
  let t: TestBox;
  before(async () => {
    t = await startTestBox({ cameras: 1, extra: { disk: noDiskLevels } });
  });
  after(() => t.close());

  it('a dangling symlink planted at the next recording’s .ts or .csv path: the start is refused, nothing is written, nothing outside', async () => {
    await sleep(1000);
    for (const ext of ['ts', 'csv', 'json']) {
      const name = `planted-${ext}`;
      const session = path.join(t.root, name);
      mkdirSync(session, { recursive: true });
      const target = path.join(outside, `stolen.${ext}`);
      const link = path.join(session, `${name}_trial001_cam0.${ext}`);
      symlinkSync(target, link); // dangling: exists() says no, lstat says yes
      const trialsBefore = rows(t).trials.length;
      // An explicit number whose path is taken is refused before anything is created ...
      const explicit = await t.box.handleCommand('start_recording', { session_prefix: name, trial_number: 1 }, api);
      assert.equal(explicit.ok, false, `.${ext}: refused`);
      assert.equal(explicit.code, 'conflict');
      assert.match(explicit.error!, new RegExp(`${name}_trial001_cam0\\.\\w+ already exists`));
      assert.deepEqual(filesUnder(session), [`${name}_trial001_cam0.${ext}`], 'no file created beside the link');
      assert.equal(rows(t).trials.length, trialsBefore, 'no trial row');
      // ... and without a number the next free one is chosen (a symlink takes its number like a file).
      const r = await t.box.handleCommand('start_recording', { session_prefix: name }, api);
      assert.equal(r.ok, true, r.error);
      assert.equal(r.data!.trial, 2, `.${ext}: trial 1 is taken by the planted link`);
      await sleep(300);
      assert.equal((await t.box.handleCommand('stop_recording', {}, api)).ok, true);
      assert.equal(existsSync(target), false, `nothing written through the .${ext} link`);
      assert.ok(lstatSync(link).isSymbolicLink(), 'the link is left as it was');
    }
    assert.deepEqual(readdirSync(outside), [], 'nothing was ever written outside the root');
  });

  it('a session folder that is a symlink leading out of the root: the start is refused clearly, nothing written there, no trial row', async () => {
    symlinkSync(outside, path.join(t.root, 'escape'));
    const before = rows(t);
    const r = await t.box.handleCommand('start_recording', { session_prefix: 'escape' }, api);
    assert.equal(r.ok, false);
    assert.equal(r.code, 'conflict', r.error);
    assert.match(r.error!, /cannot record in session escape: path escapes the recordings root/);
    assert.deepEqual(rows(t), before);
    assert.deepEqual(readdirSync(outside), [], 'nothing written outside the root');
    assert.equal(t.box.status().recording, false);
    const ok = await t.box.handleCommand('start_recording', { session_prefix: 'inside' }, api);
    assert.equal(ok.ok, true, ok.error);
    await sleep(300);
    assert.equal((await t.box.handleCommand('stop_recording', {}, api)).ok, true);
  });

  it('the CSV rewrite (reconcile, adoption) creates its temporary exclusively: a symlink planted at it or as the session folder is never written through', async () => {
    const rec = t.db.prepare("SELECT r.* FROM recordings r JOIN trials t ON t.id = r.trial_id JOIN sessions s ON s.id = t.session_id WHERE s.name = 'inside'").get() as RecordingRow;
    const csv = path.join(t.root, rec.csv_path);
    const stolen = path.join(outside, 'stolen.rebuild');
    symlinkSync(stolen, `${csv}.rebuild`);
    rewriteCsv(t.store, t.root, rec);
    assert.equal(existsSync(stolen), false, 'nothing written through the planted link');
    assert.equal(lstatSync(csv).isFile(), true);
    assert.equal(readFileSync(csv, 'utf8').trim().split('\n').length, rec.frame_count + 1, 'the CSV rewritten whole');
    // The session folder swapped for a symlink to a copy outside the root: refused, nothing created there.
    const moved = path.join(outside, 'moved');
    renameSync(path.join(t.root, 'inside'), moved);
    symlinkSync(moved, path.join(t.root, 'inside'));
    assert.throws(() => rewriteCsv(t.store, t.root, rec), /leads outside the recordings root/);
    assert.deepEqual(readdirSync(moved).filter((f) => f.includes('rebuild')), []);
  });
});

