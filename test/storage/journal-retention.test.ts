// Journal retention (issue 21): the events table is bounded by age and by rows, but the journal of data not yet
// copied off the box is never dropped. Real SQLite file, the real store and journal extension.
import assert from 'node:assert/strict';
import path from 'node:path';
import { it } from 'node:test';
import { parseConfig } from '../../src/config/load.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { EventBus } from '../../src/runtime/event-bus.ts';
import { JournalExtension } from '../../src/runtime/extensions/journal.ts';
import { openDatabase, type Db } from '../../src/storage/database.ts';
import { Store } from '../../src/storage/store.ts';
import { tmpDir } from '../helpers/tmp.ts';

const DAY_US = 86_400_000_000;

function seed(): { store: Store; db: Db; ids: Record<string, number[]>; close: () => void } {
  const db = openDatabase(path.join(tmpDir('rigcam-journal-'), 'rigcam.db'));
  const store = new Store(db);
  const now = Date.now() * 1000;
  const old = now - 400 * DAY_US; // beyond the default 365 days
  const s1 = store.openSession('s1');
  const s2 = store.openSession('s2');
  const rec = (trialId: number, name: string): number => {
    const id = store.createRecording({ trialId, cameraId: 'cam0', segment: 0, path: `${name}.ts`, csvPath: `${name}.csv`, codec: 'h264', encoder: 'x', width: 1, height: 1, fpsNominal: 30, clock: 'monotonic', mono0Us: 0, wall0Us: 0, triggerSource: null, triggerMonoUs: null });
    store.finishRecording(id, { state: 'complete', frames: 1, dropped: 0, bytes: 1, reason: null });
    return id;
  };
  store.upsertCamera({ id: 'cam0', backend: 'test' });
  const tA = store.createTrial({ sessionId: s1.id, number: 1, label: '', triggerSource: 'api', triggerMonoUs: null }); // offloaded, deleted
  const tB = store.createTrial({ sessionId: s1.id, number: 2, label: '', triggerSource: 'api', triggerMonoUs: null }); // offloaded, on the box
  const tC = store.createTrial({ sessionId: s2.id, number: 1, label: '', triggerSource: 'api', triggerMonoUs: null }); // NOT offloaded
  const rA = rec(tA.id, 'a');
  const rB = rec(tB.id, 'b');
  rec(tC.id, 'c');
  store.markOffloaded([rA, rB]);
  store.markDeleted(rA);
  const ids: Record<string, number[]> = {};
  const add = (key: string, e: Parameters<Store['addEvent']>[0]): void => void (ids[key] ??= []).push(store.addEvent(e));
  for (let i = 0; i < 3; i++) {
    add('oldBox', { kind: 'status', name: 'disk', monoUs: i, wallUs: old + i });
    add('oldA', { kind: 'status', name: 'recording_started', sessionId: s1.id, trialId: tA.id, monoUs: i, wallUs: old + i });
    add('oldAmarker', { kind: 'marker', name: 'm', sessionId: s1.id, trialId: tA.id, monoUs: i, wallUs: old + i });
    add('oldB', { kind: 'command', name: 'start_recording', sessionId: s1.id, trialId: tB.id, monoUs: i, wallUs: old + i });
    add('oldBmarker', { kind: 'marker', name: 'm', sessionId: s1.id, trialId: tB.id, monoUs: i, wallUs: old + i });
    add('oldS1', { kind: 'status', name: 'session_started', sessionId: s1.id, monoUs: i, wallUs: old + i });
    add('oldC', { kind: 'status', name: 'recording_started', sessionId: s2.id, trialId: tC.id, monoUs: i, wallUs: old + i });
    add('oldCmarker', { kind: 'marker', name: 'm', sessionId: s2.id, trialId: tC.id, monoUs: i, wallUs: old + i });
    add('oldS2', { kind: 'status', name: 'session_started', sessionId: s2.id, monoUs: i, wallUs: old + i });
  }
  for (let i = 0; i < 20; i++) add('recentBox', { kind: 'status', name: 'disk', monoUs: i, wallUs: now - 1000 + i });
  for (let i = 0; i < 5; i++) add('recentC', { kind: 'status', name: 'marker_added', sessionId: s2.id, trialId: tC.id, monoUs: i, wallUs: now - 500 + i });
  return { store, db, ids, close: () => db.close() };
}

const present = (db: Db, ids: number[]): number => ids.filter((id) => db.prepare('SELECT 1 FROM events WHERE id = ?').get(id) !== undefined).length;

const expected = {
  oldBox: 0, // old, box-level: gone
  oldA: 0, // offloaded and deleted: gone, markers too
  oldAmarker: 0,
  oldB: 0, // offloaded: its journal goes...
  oldBmarker: 3, // ...but not its markers while the recording is on the box
  oldS1: 0, // the whole session is offloaded
  oldC: 3, // not offloaded: nothing of it goes, however old
  oldCmarker: 3,
  oldS2: 3, // nor of its session
  recentBox: 5, // the row bound (10): the newest 10 are recentC and the last 5 of these
  recentC: 5,
};

it('journal retention: by age and by rows, never the journal of recordings not offloaded (markers while the files are on the box)', async () => {
  const { store, db, ids, close } = seed();
  const j = new JournalExtension({ bus: new EventBus(), store, log: silentLogger(), context: () => ({ sessionId: null, trialId: null }), retention: { max_age_days: 365, max_rows: 10 } });
  const deleted = await j.prune();
  const left = Object.fromEntries(Object.entries(ids).map(([k, v]) => [k, present(db, v)]));
  assert.deepEqual(left, expected);
  assert.equal(deleted, Object.values(ids).flat().length - Object.values(expected).reduce((a, b) => a + b, 0));
  assert.equal(await j.prune(), 0, 'a second run finds nothing more');
  close();
});

it('journal retention in small windows across the gaps a previous run left gives the same result', () => {
  const { store, db, ids, close } = seed();
  // A first pass deletes only by age, leaving gaps in the ids; then windows of 2 ids with the row bound too.
  for (let after = 0, more = true; more; ) ({ nextAfterId: after, more } = store.pruneJournal({ beforeWallUs: (Date.now() - 365 * 86_400_000) * 1000, maxRows: 1e9, afterId: after, window: 2 }));
  assert.equal(present(db, ids.oldBox!), 0);
  assert.equal(present(db, ids.recentBox!), 20);
  for (let after = 0, more = true; more; ) ({ nextAfterId: after, more } = store.pruneJournal({ beforeWallUs: (Date.now() - 365 * 86_400_000) * 1000, maxRows: 10, afterId: after, window: 2 }));
  assert.deepEqual(Object.fromEntries(Object.entries(ids).map(([k, v]) => [k, present(db, v)])), expected);
  close();
});

it('journal retention config: bounded, validated', () => {
  assert.deepEqual(parseConfig({}).journal, { max_age_days: 365, max_rows: 1_000_000 });
  assert.throws(() => parseConfig({ journal: { max_age_days: 0 } }), /max_age_days/);
  assert.throws(() => parseConfig({ journal: { max_rows: 5 } }), /max_rows/);
  assert.throws(() => parseConfig({ journal: { max_rows: 1e12 } }), /max_rows/);
  assert.throws(() => parseConfig({ journal: { keep: 1 } }), /keep/);
});
