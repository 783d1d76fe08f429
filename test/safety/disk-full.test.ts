import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import Database from 'better-sqlite3';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { existsSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { closeHttp, startHttp } from '../../src/api/server.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { applyRetention } from '../../src/disk/retention.ts';
import { openDatabase } from '../../src/storage/database.ts';
import { adoptOrphans } from '../../src/storage/open-store.ts';
import { Store } from '../../src/storage/store.ts';
import { parseConfig } from '../../src/config/load.ts';
import { BoxRuntime } from '../../src/runtime/box-runtime.ts';
import { rigcamBin, runCli } from '../helpers/cli.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { ffprobeCount, sleep, startTestBox } from '../runtime/runtime-helpers.ts';
import { skipUnlessCi } from '../helpers/requires.ts';

/** A real small filesystem: a size-limited tmpfs (needs root, as in CI). */
function smallFs(sizeMb: number): string | null {
  const dir = path.join(tmpDir('rigcam-fs-'), 'rec');
  mkdirSync(dir);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMb}m`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch {
    return null;
  }
  after(() => {
    try {
      execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
    } catch {
      /* already gone */
    }
  });
  return dir;
}

async function waitFor(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const until = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out waiting: ${what}`);
    await sleep(50);
  }
}

const canMount = process.getuid?.() === 0;
// A fast, incompressible-ish stream so the small disk fills in seconds.
const cam = { id: 'cam0', source: 'test', width: 640, height: 480, fps: 30, bitrate_kbps: 8000 };

describe('disk guard and a full disk', { skip: skipUnlessCi(!canMount && 'needs root to mount a size-limited tmpfs (CI runs as root)') }, () => {
  it('ENOSPC while writing: the recording stops cleanly, file and database agree', async () => {
    const rec = smallFs(3);
    assert.ok(rec, 'tmpfs mount failed');
    const t = await startTestBox({
      cameras: 0,
      extra: { cameras: [cam], recordings_dir: rec, disk: { min_free_to_start: 0, warn_free: 0, stop_free: 0 } },
    });
    const r = await t.box.handleCommand('start_recording', { session_prefix: 'full' }, { source: 'api' });
    assert.equal(r.ok, true, r.error);
    const stopped = await t.waitStatus('recording_stopped', () => true, 30_000);
    const err = t.statuses.find((s) => s.status === 'error' && /disk is full/.test(String(s.data.message)));
    assert.ok(err, 'an error status says the disk is full');
    const id = (stopped.data.recordings as Array<{ recording_id: number }>)[0]!.recording_id;
    const row = t.store.recording(id)!;
    assert.equal(row.state, 'interrupted');
    assert.match(row.stop_reason ?? '', /ENOSPC/);
    assert.ok(row.frame_count > 10, `frames before the disk filled: ${row.frame_count}`);
    assert.equal(ffprobeCount(path.join(rec, row.path)), row.frame_count, 'the file plays every frame the database lists');
    assert.equal(t.store.frameCount(id), row.frame_count);
    assert.equal(t.box.status().recording, false);
    await t.close();
  });

  it('a start on a full disk (database and recordings on it, database lost): up, refuses trials saying why, recovers by itself when space returns', async () => {
    const dir = smallFs(24);
    assert.ok(dir, 'tmpfs mount failed');
    const cfg = path.join(tmpDir('rigcam-cfg-'), 'rigcam.yaml');
    // min_free_to_start above the 4 MB reserve: the reserve given back to open the database is not room for a trial.
    writeFileSync(cfg, `data_dir: ${dir}\nhttp:\n  host: 127.0.0.1\n  port: 0\ndisk:\n  min_free_to_start: 8MB\n  warn_free: 10MB\n  stop_free: 6MB\n  poll_idle_ms: 200\ncameras:\n  - id: top\n    width: 320\n    height: 240\n    fps: 15\n    bitrate_kbps: 400\n`);
    const serve = async (args: string[]): Promise<{ child: ChildProcess; url: string; out: () => string }> => {
      const child = spawn(process.execPath, [rigcamBin, 'serve', ...args, '--config', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      await waitFor(() => /"rigcam serving"/.test(out) || child.exitCode !== null, 60_000, 'rigcam serving');
      assert.equal(child.exitCode, null, `serve exited: ${out}`);
      const url = /"url":"(http:\/\/[^"]+?)\/?"/.exec(out)![1]!;
      return { child, url, out: () => out };
    };
    const stopServe = async (child: ChildProcess): Promise<number | null> => {
      child.kill('SIGTERM');
      return child.exitCode ?? (await new Promise<number | null>((r) => child.on('close', r)));
    };
    // A first run records a trial and writes the database's reserve.
    const first = await serve(['--demo', '2']);
    await waitFor(() => /demo trial recorded/.test(first.out()), 60_000, 'the demo trial');
    await waitFor(() => existsSync(path.join(dir, 'rigcam.reserve')), 10_000, 'the reserve');
    assert.equal(await stopServe(first.child), 0);
    const video = path.join(dir, 'recordings', 'demo', 'demo_trial001_top.ts');
    const frames = ffprobeCount(video);
    assert.ok(frames > 10, `frames recorded: ${frames}`);
    // The database is lost (its recording must be adopted: that writes), then the volume fills up completely.
    for (const f of readdirSync(dir)) if (f.startsWith('rigcam.db')) unlinkSync(path.join(dir, f));
    const filler = path.join(dir, 'filler.bin');
    const fd = openSync(filler, 'w');
    try {
      for (;;) writeSync(fd, Buffer.alloc(1 << 20, 3));
    } catch (err) {
      assert.equal((err as NodeJS.ErrnoException).code, 'ENOSPC');
    } finally {
      closeSync(fd);
    }
    assert.ok((await statfs(dir)).bavail < 8, 'the volume is full');

    const box = await serve([]);
    const health = async (): Promise<Record<string, unknown>> => (await (await fetch(`${box.url}/api/health`)).json()) as Record<string, unknown>;
    const h = await health();
    assert.equal(h.ok, true);
    assert.equal(h.recording_allowed, false);
    assert.match(String(h.reason), /disk was full/);
    assert.equal((await fetch(`${box.url}/`)).status, 200, 'the page is served');
    const st = (await (await fetch(`${box.url}/api/status`)).json()) as { disk: { recovery_pending: boolean; start_refused: string; database: { bytes: number } } };
    assert.equal(st.disk.recovery_pending, true);
    assert.ok(st.disk.database.bytes > 0, 'the database is counted');
    const refused = await fetch(`${box.url}/api/trials/start`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(refused.status, 507);
    assert.equal(((await refused.json()) as { code: string }).code, 'disk_full');
    const db = (): Database.Database => new Database(path.join(dir, 'rigcam.db'), { readonly: true });
    const count = (sql: string): number => {
      const d = db();
      try {
        return (d.prepare(sql).get() as { n: number }).n;
      } finally {
        d.close();
      }
    };
    assert.equal(count('SELECT COUNT(*) n FROM recordings'), 0, 'adoption postponed');
    assert.equal(count('SELECT COUNT(*) n FROM trials'), 0, 'the refused start left no junk trial');
    // Space comes back (the user deletes a file): no restart needed.
    unlinkSync(filler);
    await waitFor(async () => (await health()).recording_allowed === true, 15_000, 'trials allowed again');
    assert.equal(count("SELECT COUNT(*) n FROM recordings WHERE path = 'demo/demo_trial001_top.ts'"), 1, 'the recording on disk adopted');
    assert.equal(count('SELECT frame_count n FROM recordings'), frames);
    assert.equal(count('SELECT COUNT(*) n FROM frames'), frames, 'a row per frame of the file');
    assert.equal(readFileSync(video.replace(/\.ts$/, '.csv'), 'utf8').trim().split('\n').length - 1, frames, 'a CSV row per frame');
    const ok = await fetch(`${box.url}/api/trials/start`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ session: 'demo' }) });
    assert.equal(ok.status, 200, await ok.text());
    await sleep(1500);
    assert.equal((await fetch(`${box.url}/api/trials/stop`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status, 200);
    await waitFor(() => existsSync(path.join(dir, 'rigcam.reserve')), 10_000, 'the reserve written again');
    assert.equal(await stopServe(box.child), 0);
    assert.equal(count("SELECT COUNT(*) n FROM recordings WHERE path = 'demo/demo_trial002_top.ts' AND state = 'complete'"), 1, 'the next trial number is past the adopted one');

    // Restarted on a full disk once more, the reserve used up: the WAL index cannot be created, the database is
    // opened for rigcam alone (exclusive locking, index in memory); the box still comes up and recovers.
    unlinkSync(path.join(dir, 'rigcam.reserve'));
    rmSync(path.join(dir, 'rigcam.db-shm'), { force: true }); // a clean stop leaves none; never the -wal
    const fd2 = openSync(filler, 'w');
    try {
      for (;;) writeSync(fd2, Buffer.alloc(1 << 16, 3));
    } catch (err) {
      assert.equal((err as NodeJS.ErrnoException).code, 'ENOSPC');
    } finally {
      closeSync(fd2);
    }
    const third = await serve([]);
    assert.match(third.out(), /opened for rigcam alone/);
    const h3 = (await (await fetch(`${third.url}/api/health`)).json()) as Record<string, unknown>;
    assert.equal(h3.recording_allowed, false);
    assert.equal((await fetch(`${third.url}/api/trials/start`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status, 507);
    unlinkSync(filler);
    await waitFor(async () => ((await (await fetch(`${third.url}/api/health`)).json()) as Record<string, unknown>).recording_allowed === true, 15_000, 'trials allowed again');
    await waitFor(async () => ((await (await fetch(`${third.url}/api/status`)).json()) as { cameras: Array<{ state: string }> }).cameras.every((c) => c.state === 'ready'), 30_000, 'the camera ready');
    const again = await fetch(`${third.url}/api/trials/start`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ session: 'demo' }) });
    assert.equal(again.status, 200, `${await again.text()} ${third.out().slice(-3000)}`);
    await sleep(1500);
    assert.equal((await fetch(`${third.url}/api/trials/stop`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status, 200);
    assert.equal(await stopServe(third.child), 0);
    assert.equal(count("SELECT COUNT(*) n FROM recordings WHERE path = 'demo/demo_trial003_top.ts' AND state = 'complete'"), 1);
    const third3 = path.join(dir, 'recordings', 'demo', 'demo_trial003_top.ts');
    assert.equal(count("SELECT frame_count n FROM recordings WHERE path = 'demo/demo_trial003_top.ts'"), ffprobeCount(third3));
  });

  it("the database's own volume is watched too: its free space refuses starts and stops trials, its size is counted", async () => {
    const rec = smallFs(64);
    const data = smallFs(16);
    assert.ok(rec && data, 'tmpfs mount failed');
    const config = parseConfig({ data_dir: data, recordings_dir: rec, cameras: [{ ...cam, width: 320, height: 240, bitrate_kbps: 500 }], disk: { min_free_to_start: '6MB', warn_free: '8MB', stop_free: '4MB', poll_idle_ms: 100, poll_recording_ms: 100 } });
    const db = openDatabase(path.join(data, 'rigcam.db'));
    const store = new Store(db);
    const box = new BoxRuntime({ config, store, log: silentLogger(), root: rec });
    const statuses: string[] = [];
    box.on('status', (m) => statuses.push(`${m.status}:${String((m.data as { message?: unknown }).message ?? '')}`));
    await box.initialize();
    try {
      const d0 = box.status().disk!;
      assert.equal(d0.database!.same_volume, false);
      assert.equal(d0.database!.path, data);
      assert.ok(d0.database!.bytes > 0, 'the database (and its WAL) counted');
      const r = await box.handleCommand('start_recording', { session_prefix: 'dbvol' }, { source: 'api' });
      assert.equal(r.ok, true, r.error);
      // The data volume (not the recordings one) fills up while recording: the trial stops cleanly.
      const free = (await statfs(data)).bavail * (await statfs(data)).bsize;
      writeFileSync(path.join(data, 'filler.bin'), Buffer.alloc(Math.floor(free - 3 * 1024 * 1024), 1));
      await waitFor(() => !box.status().recording, 10_000, 'the trial stopped');
      assert.ok(statuses.some((s) => /^error:disk almost full: .* on the database's volume/.test(s)), statuses.join('\n'));
      const row = store.recording(1)!;
      assert.equal(row.state, 'complete');
      assert.equal(ffprobeCount(path.join(rec, row.path)), row.frame_count);
      assert.equal(store.frameCount(1), row.frame_count);
      const again = await box.handleCommand('start_recording', { session_prefix: 'dbvol' }, { source: 'api' });
      assert.equal(again.ok, false);
      assert.match(again.error!, /not enough free disk for the database/);
      assert.ok(box.status().disk!.free_bytes > 50 * 1024 * 1024, 'while the recordings volume has plenty');
      unlinkSync(path.join(data, 'filler.bin'));
      await waitFor(() => box.status().disk!.start_refused === null, 5000, 'starts allowed again');
    } finally {
      await box.shutdown();
      db.close();
    }
  });

  it('stop_free: recordings stop cleanly before the disk is full; starts below min_free_to_start are refused', async () => {
    const rec = smallFs(8);
    assert.ok(rec, 'tmpfs mount failed');
    const t = await startTestBox({
      cameras: 0,
      extra: { cameras: [cam], recordings_dir: rec, disk: { min_free_to_start: '5MB', warn_free: '6MB', stop_free: '4MB', poll_recording_ms: 100 } },
    });
    const r = await t.box.handleCommand('start_recording', { session_prefix: 'guard' }, { source: 'api' });
    assert.equal(r.ok, true, r.error);
    const stopped = await t.waitStatus('recording_stopped', () => true, 30_000);
    const id = (stopped.data.recordings as Array<{ recording_id: number }>)[0]!.recording_id;
    const row = t.store.recording(id)!;
    assert.equal(row.state, 'complete', 'finalised, not torn');
    assert.match(row.stop_reason ?? '', /disk/);
    assert.equal(ffprobeCount(path.join(rec, row.path)), row.frame_count);
    assert.ok(t.statuses.some((s) => s.status === 'warning' && /low disk/.test(String(s.data.message))), 'warned first');
    const disk = t.box.status().disk as { free_bytes: number; level: string; minutes_left: number | null };
    assert.ok(disk.free_bytes < 5 * 1024 * 1024, `free ${disk.free_bytes}`);
    const again = await t.box.handleCommand('start_recording', { session_prefix: 'guard' }, { source: 'api' });
    assert.equal(again.ok, false);
    assert.match(again.error!, /not enough free disk to start/);
    // /api/health reports the guard's state: alive, but no recording.
    const server = await startHttp({ config: { ...t.config, http: { ...t.config.http, host: '127.0.0.1', port: 0, token: null } }, box: t.box, store: t.store, root: t.root, log: silentLogger() });
    const health = (await (await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/api/health`)).json()) as Record<string, unknown>;
    await closeHttp(server);
    assert.equal(health.ok, true);
    assert.equal(health.recording_allowed, false);
    assert.match(String(health.disk_level), /^(stop|warn)$/);
    await t.close();
  });

  it('minutes of recording left are estimated from the live bitrate', async () => {
    const rec = smallFs(64);
    assert.ok(rec, 'tmpfs mount failed');
    const t = await startTestBox({ cameras: 0, extra: { cameras: [cam], recordings_dir: rec, disk: { min_free_to_start: 0, warn_free: 0, stop_free: '4MB', poll_recording_ms: 200 } } });
    await t.box.handleCommand('start_recording', {}, { source: 'api' });
    await sleep(2500);
    const disk = t.box.status().disk as { free_bytes: number; bytes_per_second: number; minutes_left: number };
    await t.box.handleCommand('stop_recording', {}, { source: 'api' });
    assert.ok(disk.bytes_per_second > 200_000, `bitrate ${disk.bytes_per_second}`);
    const expected = (disk.free_bytes - 4 * 1024 * 1024) / disk.bytes_per_second / 60;
    assert.ok(Math.abs(disk.minutes_left - expected) < 0.2, `minutes left ${disk.minutes_left} vs ${expected}`);
    assert.ok(disk.minutes_left > 0.2 && disk.minutes_left < 5, `minutes left ${disk.minutes_left}`);
    await t.close();
  });

  it('retention runs on every poll while free space is below keep_free, down to keep_free, only offloaded recordings', async () => {
    const rec = smallFs(16);
    assert.ok(rec, 'tmpfs mount failed');
    const mbytes = 1024 * 1024;
    const t = await startTestBox({
      cameras: 0,
      extra: { cameras: [cam], recordings_dir: rec, disk: { min_free_to_start: 0, warn_free: 0, stop_free: 0, poll_idle_ms: 100, retention: { enabled: true, keep_free: '10MB' } } },
    });
    const free = async (): Promise<number> => {
      const s = await statfs(rec);
      return s.bavail * s.bsize;
    };
    for (let i = 0; i < 3; i++) {
      await t.box.handleCommand('start_recording', { session_prefix: 'poll' }, { source: 'api' });
      await sleep(1200);
      await t.box.handleCommand('stop_recording', {}, { source: 'api' });
    }
    const files = [1, 2, 3].map((id) => path.join(rec, t.store.recording(id)!.path));
    const sizes = files.map((f) => statSync(f).size);
    assert.ok(sizes.every((b) => b > 300_000), `recordings big enough to matter: ${sizes}`);
    // Fill the disk (a file retention may not touch) until free space is just under keep_free: the level stays
    // `ok` (no threshold crossed), so only a check on every poll can see it.
    const filler = Math.floor((await free()) - 10 * mbytes + sizes[0]! / 2);
    writeFileSync(path.join(rec, 'filler.bin'), Buffer.alloc(filler, 7));
    assert.ok((await free()) < 10 * mbytes);
    await sleep(600);
    assert.deepEqual(files.map((f) => existsSync(f)), [true, true, true], 'nothing offloaded: nothing deleted, whatever the disk says');
    t.store.markOffloaded([1]);
    await waitFor(() => !existsSync(files[0]!), 3000, 'recording 1 deleted at a later poll');
    if ((await free()) < 10 * mbytes) {
      // Still short: recording 3 is not offloaded and stays; offloading 2 and 3 later frees the rest.
      await sleep(500);
      assert.deepEqual(files.map((f) => existsSync(f)), [false, true, true]);
      t.store.markOffloaded([2, 3]);
      await waitFor(async () => (await free()) >= 10 * mbytes, 3000, 'free space back above keep_free');
    }
    await sleep(500);
    assert.ok((await free()) >= 10 * mbytes, 'down to keep_free');
    // Oldest first.
    const exists = files.map((f) => existsSync(f));
    assert.deepEqual(exists, [...exists].sort(), `oldest first: ${exists}`);
    assert.ok(exists[2] || !exists[1], 'the newest goes only after the older ones');
    const runs = t.statuses.filter((m) => m.status === 'retention');
    assert.ok(runs.length >= 1, 'retention reported');
    assert.ok(t.store.recording(1)!.deleted_at, 'deletion recorded');
    await t.close();
  });

  it('retention deletes only recordings marked offloaded, oldest first, never the others, with their .mp4, CSV and sidecar', async () => {
    const rec = smallFs(16);
    assert.ok(rec, 'tmpfs mount failed');
    const small = { ...cam, width: 320, height: 240, bitrate_kbps: 1000 };
    const t = await startTestBox({ cameras: 0, extra: { cameras: [small], recordings_dir: rec, recording: { remux_mp4: true }, disk: { min_free_to_start: 0, warn_free: 0, stop_free: 0 } } });
    for (let i = 0; i < 3; i++) {
      await t.box.handleCommand('start_recording', { session_prefix: 'ret' }, { source: 'api' });
      await sleep(700);
      await t.box.handleCommand('stop_recording', {}, { source: 'api' });
    }
    const cfgFile = path.join(t.config.data_dir, 'rigcam.yaml');
    (await import('node:fs')).writeFileSync(cfgFile, `data_dir: ${t.config.data_dir}\nrecordings_dir: ${rec}\n`);
    // Mark recordings 1 and 2 offloaded through the CLI, as a lab's copy script would.
    const cli = await runCli(['recordings', 'offloaded', '1', '2', '--config', cfgFile]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, /marked 2 of 2/);
    const paths = [1, 2, 3].map((id) => path.join(rec, t.store.recording(id)!.path));
    await waitFor(() => [1, 2, 3].every((id) => t.store.recording(id)!.mp4_path !== null), 30_000, 'the three remuxes');
    const sidecar1 = readFileSync(paths[0]!.replace(/\.ts$/, '.json'));
    // Ask for more free space than the disk can ever have: everything deletable goes, nothing else.
    const deleted = await applyRetention({
      store: t.store,
      root: rec,
      log: silentLogger(),
      keepFreeBytes: 1e12,
      freeBytes: async () => {
        const s = await statfs(rec);
        return s.bavail * s.bsize;
      },
    });
    assert.deepEqual(deleted, [1, 2]);
    assert.deepEqual(paths.map((p) => existsSync(p)), [false, false, true]);
    // Nothing of a deleted recording is left behind (video, remux, CSV, JSON sidecar); recording 3 keeps all of it.
    const family = (p: string): string[] => ['.ts', '.mp4', '.csv', '.json'].map((ext) => p.replace(/\.ts$/, ext));
    assert.deepEqual(paths.map((p) => family(p).map((f) => existsSync(f))), [[false, false, false, false], [false, false, false, false], [true, true, true, true]]);
    // session.json is the session's document (what was recorded), not a file of a recording: it stays.
    assert.deepEqual(
      readdirSync(path.dirname(paths[0]!)).filter((f) => f !== 'session.json').sort(),
      family(paths[2]!).map((f) => path.basename(f)).sort(),
      'no orphan file of a deleted recording',
    );
    // A run cut short after the video went leaves a sidecar alone: it never brings the recording back, neither at a
    // start with this database nor after a database loss (only video files are adopted).
    writeFileSync(family(paths[0]!)[3]!, sidecar1);
    assert.equal((await adoptOrphans(t.store, rec, silentLogger())).adopted, 0);
    const lost = new Store(openDatabase(path.join(tmpDir('rigcam-lost-'), 'rigcam.db')));
    const again = await adoptOrphans(lost, rec, silentLogger());
    assert.equal(again.adopted, 1, 'only recording 3 (its video is there)');
    assert.deepEqual([...lost.knownVideoPaths()].filter((p) => p.endsWith('.ts')), [t.store.recording(3)!.path]);
    lost.close();
    assert.ok(t.store.recording(1)!.deleted_at, 'deletion recorded');
    assert.equal(t.store.recording(3)!.deleted_at, null);
    await t.close();
  });
});
