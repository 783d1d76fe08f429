import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { openDatabase, type Db } from '../../src/storage/database.ts';
import { Store } from '../../src/storage/store.ts';
import { repoRoot } from '../helpers/cli.ts';
import { tmpDir } from '../helpers/tmp.ts';

/** The real database, with its prepare() calls counted (the Store under test is not touched). */
function countingDb(file: string): { db: Db; prepared: string[] } {
  const real = openDatabase(file);
  const prepared: string[] = [];
  const db = new Proxy(real, {
    get(target, prop) {
      const v = Reflect.get(target, prop, target) as unknown;
      if (prop === 'prepare') return (sql: string) => (prepared.push(sql), target.prepare(sql));
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return { db, prepared };
}

/** One pass over the store's API as a trial and a restart use it. */
function workload(store: Store, round: number): void {
  store.upsertCamera({ id: 'cam0', backend: 'test' });
  store.openSession('s1');
  const s = store.openSession('s1', { round });
  store.openSession('s1');
  const t = store.createTrial({ sessionId: s.id, number: store.nextTrialNumber(s.id), label: `t${round}`, triggerSource: 'api', triggerMonoUs: 5 });
  store.trialExists(s.id, t.number);
  store.trialByNumber(s.id, t.number);
  const id = store.createRecording({
    trialId: t.id, cameraId: 'cam0', segment: 0, path: `s1/r${round}.ts`, csvPath: `s1/r${round}.csv`, codec: 'h264', encoder: 'libx264',
    width: 320, height: 240, fpsNominal: 30, clock: 'monotonic', mono0Us: 1, wall0Us: 2, triggerSource: 'api', triggerMonoUs: 5,
  });
  store.insertFrames([1, 2, 3].map((i) => ({ recordingId: id, index: i, captureUs: i * 10, wallUs: i * 10 + 2, intervalUs: i > 1 ? 10 : null, missingBefore: 0, pts: i * 900, keyframe: i === 1, bytes: 100, flags: '' })));
  store.setTriggerFrame(id, 1);
  store.updateRecordingProgress(id, { frames: 3, dropped: 0, bytes: 300 });
  store.addEvent({ kind: 'marker', name: 'm', monoUs: 15, trialId: t.id });
  store.markersOfTrial(t.id);
  store.frames(id);
  store.framesAfter(id, 1, 10);
  store.frame(id, 2);
  [...store.framePts(id)];
  store.frameCount(id);
  store.transactionNoWait(() => store.frameCount(id));
  store.finishReconciled(id, { framesInFile: 2, bytes: 200, reason: 'test' });
  store.recording(id);
  store.recordingByPath(`s1/r${round}.ts`);
  store.recordingsOfTrial(t.id);
  store.recordingsInState('recording');
  store.setTrialState(t.id, 'complete');
  store.markOffloaded([id]);
  store.offloadedOldestFirst(5);
  store.markDeleted(id);
  store.listRecordings();
  store.listSessions();
  store.trialsOfSession(s.id);
  store.cameraRow('cam0');
  store.interruptOpenTrials();
  store.closeRebuiltTrials();
  store.closeSession(s.id);
}

describe('Store', () => {
  it('prepares each statement once and reuses it', () => {
    const { db, prepared } = countingDb(path.join(tmpDir(), 'rigcam.db'));
    const store = new Store(db);
    workload(store, 1);
    const first = prepared.length;
    assert.ok(first >= 25, `the workload used ${first} statements`);
    assert.equal(new Set(prepared).size, first, 'no statement prepared twice in the first pass');
    for (let round = 2; round <= 5; round++) workload(store, round);
    assert.equal(prepared.length, first, `later passes prepared again: ${prepared.slice(first).join(' | ')}`);
    store.close();
  });

  it('transactionNoWait runs its work without a busy wait and restores the wait after, also when the work throws', () => {
    const db = openDatabase(path.join(tmpDir(), 'rigcam.db'));
    const store = new Store(db);
    const wait = (): unknown => db.pragma('busy_timeout', { simple: true });
    const before = wait();
    assert.ok(typeof before === 'number' && before > 0, `rigcam's connection waits briefly for a lock: ${String(before)}`);
    assert.equal(store.transactionNoWait(() => wait()), 0);
    assert.equal(wait(), before);
    db.pragma('busy_timeout = 7');
    assert.throws(() => store.transactionNoWait(() => { throw new Error('boom'); }), /boom/);
    assert.equal(wait(), 7, 'the wait in force before the call comes back, not a remembered one');
    store.close();
  });

  it('finishReconciled drops the rows beyond the file and recounts the drops in one go', () => {
    const store = new Store(openDatabase(path.join(tmpDir(), 'rigcam.db')));
    store.upsertCamera({ id: 'cam0', backend: 'test' });
    const id = store.createRecording({
      trialId: null, cameraId: 'cam0', segment: 0, path: 'a.ts', csvPath: 'a.csv', codec: 'h264', encoder: 'copy',
      width: 1, height: 1, fpsNominal: 30, clock: 'monotonic', mono0Us: 0, wall0Us: 0, triggerSource: null, triggerMonoUs: null,
    });
    store.insertFrames([1, 2, 3, 4].map((i) => ({ recordingId: id, index: i, captureUs: i, wallUs: i, intervalUs: null, missingBefore: i, pts: i, keyframe: false, bytes: 1, flags: '' })));
    store.finishReconciled(id, { framesInFile: 2, bytes: 42, reason: 'r' });
    const rec = store.recording(id)!;
    assert.deepEqual([rec.state, rec.frame_count, rec.dropped, rec.bytes, rec.stop_reason], ['interrupted', 2, 1 + 2, 42, 'r']);
    assert.deepEqual(store.frames(id).map((f) => f.frame_index), [1, 2]);
    store.close();
  });
});

describe("SQLite's page cache is bounded", () => {
  // A full scan of a 24 MiB table in a fresh process: the RSS it adds is SQLite's page cache (the file's pages are
  // the kernel's). better-sqlite3's own default (16 MB) is the control, so the measurement is shown to see a cache.
  it('a connection opened by rigcam adds at most a few MiB reading a big table; a default connection adds more', () => {
    const file = path.join(tmpDir(), 'big.db');
    const db = openDatabase(file);
    db.exec('CREATE TABLE big (id INTEGER PRIMARY KEY, b BLOB)');
    const ins = db.prepare('INSERT INTO big (b) VALUES (randomblob(1000))');
    db.transaction(() => {
      for (let i = 0; i < 24_000; i++) ins.run();
    })();
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.close();
    const scan = (viaRigcam: boolean): number => {
      const script = `
        const { openDatabase } = await import(${JSON.stringify(new URL('../../src/storage/database.ts', import.meta.url).href)});
        const { default: Database } = await import('better-sqlite3');
        const db = ${viaRigcam ? `openDatabase(${JSON.stringify(file)}, { readonly: true })` : `new Database(${JSON.stringify(file)}, { readonly: true })`};
        globalThis.gc();
        const before = process.memoryUsage().rss;
        db.prepare('SELECT sum(length(b)) AS n FROM big').get();
        console.log(process.memoryUsage().rss - before);`;
      // From the repository, where `tsx` and `better-sqlite3` resolve.
      return Number(execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', '--input-type=module', '-e', script], { cwd: repoRoot }).toString().trim());
    };
    const mib = (n: number): string => `${(n / 1048576).toFixed(1)} MiB`;
    // A fresh process's RSS also moves with V8's own start-up work (seen: +5.5 MiB during one scan, given back
    // right after), which only ever adds: the least of three runs is the cache's share. The control's 16 MB cache
    // can partly land in heap pages already resident (a run under load saw 11.8 MiB): the most of two, against 10.
    const ours = Math.min(scan(true), scan(true), scan(true));
    const stock = Math.max(scan(false), scan(false));
    assert.ok(ours < 6 * 1048576, `rigcam's connection grew ${mib(ours)}`);
    assert.ok(stock > 10 * 1048576, `the control grew only ${mib(stock)}: the scan did not fill a cache`);
  });
});
