import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { StartSyncs } from '../../src/recording/start-syncs.ts';
import { openDatabase } from '../../src/storage/database.ts';
import { Store } from '../../src/storage/store.ts';
import { repoRoot } from '../helpers/cli.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { skipUnlessCi } from '../helpers/requires.ts';

describe('StartSyncs', () => {
  it('runs every fsync and each keyed step once; a file that cannot be synced fails the batch; nothing may join after it ran', async () => {
    const dir = tmpDir();
    const f = path.join(dir, 'a.json');
    writeFileSync(f, '{}');
    const s = new StartSyncs();
    let steps = 0;
    s.file(f);
    s.entryOf(f);
    s.entryOf(path.join(dir, 'b.ts')); // same directory: synced once
    s.also('database', async () => void steps++);
    s.also('database', async () => void steps++);
    assert.equal(s.size, 3);
    await s.run();
    assert.equal(steps, 1);
    assert.throws(() => s.file(f), /already ran/);
    assert.throws(() => s.entryOf(f), /already ran/);

    const bad = new StartSyncs();
    bad.file(path.join(dir, 'gone.json'));
    bad.entryOf(f);
    await assert.rejects(bad.run(), /ENOENT/);
    const failing = new StartSyncs();
    failing.also('database', () => Promise.reject(new Error('disk I/O error')));
    await assert.rejects(failing.run(), /disk I\/O error/);
  });

  it("runs the work deferred past the announcement (the pre-roll) only once announced, after the command's reply; never for a failed start", async () => {
    const dir = tmpDir();
    const f = path.join(dir, 'a.json');
    writeFileSync(f, '{}');
    const order: string[] = [];
    const s = new StartSyncs();
    s.file(f);
    s.also('database', () => new Promise<void>((r) => setTimeout(r, 30)));
    s.afterAnnounce(() => order.push('pre-roll'));
    await s.run();
    assert.ok(s.waitedUs! >= 20_000, `waited ${s.waitedUs} µs for a 30 ms step`);
    assert.throws(() => s.afterAnnounce(() => {}), /already ran/);
    assert.equal(order.length, 0, 'nothing deferred runs with the fsyncs');
    s.announced();
    void Promise.resolve().then(() => order.push('reply'));
    order.push('announced');
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(order, ['announced', 'reply', 'pre-roll']);
    s.announced();
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(order, ['announced', 'reply', 'pre-roll'], 'deferred work runs once');

    // A failed start is never announced: what it deferred does not run (the recorder's abort decides its frames).
    const failing = new StartSyncs();
    let ran = false;
    failing.also('database', () => Promise.reject(new Error('disk I/O error')));
    failing.afterAnnounce(() => void (ran = true));
    await assert.rejects(failing.run(), /disk I\/O error/);
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(ran, false);
  });

  it('Store.syncCommitted syncs the WAL a non-durable commit wrote (and the database file when there is no WAL)', async () => {
    const dir = tmpDir();
    const store = new Store(openDatabase(path.join(dir, 'rigcam.db')));
    store.upsertCamera({ id: 'cam0', backend: 'test' });
    await store.syncCommitted();
    store.close();
    // Closed cleanly: the WAL is gone, the database file is what is synced.
    const again = new Store(openDatabase(path.join(dir, 'rigcam.db')));
    await again.syncCommitted();
    again.close();
  });

  it('a trial start fsyncs its sidecar, its files\' directory and the database WAL before it reports recording_started; a new segment (source restart) likewise before segment_started; a stop fsyncs the WAL before recording_stopped; none of them fsyncs on the event loop', { skip: skipUnlessCi(spawnSync('strace', ['-V']).status !== 0 && 'strace is not installed (apt-get install strace)') }, () => {
    const dir = tmpDir();
    const script = path.join(dir, 'start.mts');
    writeFileSync(
      script,
      `import { writeSync } from 'node:fs';
import { startTestBox } from ${JSON.stringify(path.join(repoRoot, 'test/runtime/runtime-helpers.ts'))};
const t = await startTestBox({ cameras: 2, extra: { supervisor: { restart_initial_ms: 200, restart_max_ms: 1000, healthy_after_ms: 5000 } } });
t.box.on('status', (m) => {
  if (m.status === 'recording_started') writeSync(1, 'STARTED\\n');
  if (m.status === 'segment_started') writeSync(1, 'SEGMENT\\n');
  if (m.status === 'recording_stopped') writeSync(1, 'STOPPED\\n');
});
writeSync(1, 'BEGIN ' + process.pid + '\\n');
const r = await t.box.handleCommand('start_recording', { session: 'synced' }, { source: 'api' });
if (!r.ok) throw new Error(r.error);
await new Promise((res) => setTimeout(res, 1000));
// cam0's source crashes: the trial goes on in a new segment file.
writeSync(1, 'KILL\\n');
process.kill(t.box.cameras.get('cam0').stats().sourcePid, 'SIGKILL');
await t.waitStatus('segment_started', () => true, 20_000);
await new Promise((res) => setTimeout(res, 300));
const s = await t.box.handleCommand('stop_recording', {}, { source: 'api' });
if (!s.ok) throw new Error(s.error);
writeSync(1, 'END\\n');
await t.close();
process.exit(0);
`,
    );
    const log = path.join(dir, 'strace.log');
    const r = spawnSync('strace', ['-f', '-y', '-qq', '-e', 'trace=fsync,fdatasync,write', '-o', log, process.execPath, '--import', 'tsx', script], { cwd: repoRoot, encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr.slice(-2000));
    const lines = readFileSync(log, 'utf8').split('\n');
    const marker = (re: RegExp): number => lines.findIndex((l) => re.test(l));
    const begin = marker(/write\(1<[^>]*>, "BEGIN \d+\\n"/);
    const started = marker(/write\(1<[^>]*>, "STARTED\\n"/);
    const killed = marker(/write\(1<[^>]*>, "KILL\\n"/);
    const segment = marker(/write\(1<[^>]*>, "SEGMENT\\n"/);
    const stopped = marker(/write\(1<[^>]*>, "STOPPED\\n"/);
    assert.ok(begin >= 0 && started > begin && killed > started && segment > killed && stopped > segment, `the markers are in the trace in order (${begin}, ${started}, ${killed}, ${segment}, ${stopped})`);
    const mainTid = /"BEGIN (\d+)\\n"/.exec(lines[begin]!)![1]!;
    // Where each fsync of a path matching `re` completed (a call another thread interrupts is split in two lines:
    // "<unfinished ...>" with the path, "<... fsync resumed>" with the result, from the same thread).
    const completions = (re: RegExp): number[] =>
      lines.flatMap((l, i) => {
        const m = /^(\d+)\s+f(?:data)?sync\((\d+<[^>]*>)/.exec(l);
        if (!m || !re.test(m[2]!)) return [];
        if (!l.includes('<unfinished')) return /= 0$/.test(l) ? [i] : [];
        const j = lines.findIndex((n, k) => k > i && n.startsWith(`${m[1]} `) && /f(?:data)?sync resumed/.test(n));
        return j > 0 && /= 0$/.test(lines[j]!) ? [j] : [];
      });
    const syncedBetween = (re: RegExp, from: number, to: number): boolean => completions(re).some((i) => i > from && i < to);
    assert.ok(syncedBetween(/synced_trial001_cam0\.json>$/, begin, started), 'the sidecar was fsynced before the start was reported');
    assert.ok(syncedBetween(/recordings\/synced>$/, begin, started), "the session folder (the files' directory entries) was fsynced before");
    assert.ok(syncedBetween(/rigcam\.db-wal>$/, begin, started), "the database's WAL (the trial and recording rows) was fsynced before");
    assert.ok(syncedBetween(/synced_trial001_cam0_seg01\.json>$/, killed, segment), "the new segment's sidecar was fsynced before segment_started");
    assert.ok(syncedBetween(/recordings\/synced>$/, killed, segment), "the session folder (the segment's entries) was fsynced before");
    assert.ok(syncedBetween(/rigcam\.db-wal>$/, killed, segment), "the WAL (the segment's recording row) was fsynced before");
    assert.ok(syncedBetween(/rigcam\.db-wal>$/, segment, stopped), "the WAL (the trial's and its recordings' ends) was fsynced again before recording_stopped");
    // An fsync on the event loop holds every camera's pipe unread for as long as the card takes (10-60 ms on an SD card).
    const onLoop = lines.slice(begin, stopped).filter((l) => new RegExp(`^${mainTid}\\s+f(?:data)?sync\\(`).test(l));
    assert.deepEqual(onLoop, [], 'no fsync on the event loop thread between the start command and recording_stopped, the new segment included');
  });
});
