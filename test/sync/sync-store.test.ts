// Sync edges in the store (issue 18): nothing lost while another process holds the database's write lock; the
// queries a session export uses; an old database migrated.
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { stopHoldMs } from '../../src/recording/stop-hold.ts';
import { migrate, openDatabase, schemaVersion } from '../../src/storage/database.ts';
import { migrations } from '../../src/storage/migrations.ts';
import { Store } from '../../src/storage/store.ts';
import { parseConfig } from '../../src/config/load.ts';
import { sleep, syncLines, until, writePulseFixture } from '../helpers/sync-train.ts';
import { tmpDir } from '../helpers/tmp.ts';

describe('sync edges in the store', () => {
  it('edges that arrive while another process holds the write lock are kept and stored once it is released', async (t) => {
    const dir = tmpDir('rigcam-sync-lock-');
    const file = path.join(dir, 'rigcam.db');
    const store = new Store(openDatabase(file));
    t.after(() => store.close());
    const onsets = Array.from({ length: 20 }, (_, i) => BigInt(2_000_000_000_000 + i * 300_000_000 + (i % 3) * 57_000_000));
    writePulseFixture(path.join(dir, 'train.txt'), 5, onsets);
    const session = store.openSession('locked');
    const lines = syncLines(store, dir, { inputs: [{ line: 5, mode: 'sync' }] }, { GPIOD_STANDIN_VERSION: '2', GPIOMON_FIXTURE: path.join(dir, 'train.txt'), GPIOMON_SPEED: '3' }, () => ({ sessionId: session.id, trialId: null }));
    await lines.start();
    t.after(() => lines.stop());
    // Another process (here: another connection) takes the write lock once the first edges are in.
    await until('first edges', () => lines.edges('in').length >= 4);
    const other = new Database(file);
    other.exec('BEGIN IMMEDIATE');
    const stored = lines.edges('in').length;
    await sleep(1200);
    assert.ok(lines.edges('in').length === stored, 'nothing could be written while locked');
    other.exec('COMMIT');
    other.close();
    await until('all 40 edges', () => lines.edges('in').length >= 40, 20_000);
    await sleep(300);
    const edges = lines.edges('in');
    assert.deepEqual(
      edges.map((e) => e.mono_us),
      onsets.flatMap((o) => [Number(o / 1000n), Number((o + 10_000_000n) / 1000n)]),
      'every edge once, in order',
    );
    // The export's queries: by session, and by span on this boot.
    assert.equal(store.syncEdgesOfSession(session.id).length, 40);
    const span = store.syncEdgesInSpan(edges[0]!.boot_id, edges[10]!.mono_us, edges[19]!.mono_us);
    assert.deepEqual(span.map((e) => e.id), edges.slice(10, 20).map((e) => e.id));
    assert.deepEqual(store.syncEdgesInSpan('another-boot', 0, Number.MAX_SAFE_INTEGER), []);
  });

  it('a database of the previous schema gains the sync tables; nothing else changes', () => {
    const dir = tmpDir('rigcam-sync-mig-');
    const file = path.join(dir, 'old.db');
    const old = new Database(file);
    migrate(old, 4);
    old.exec("INSERT INTO sessions (name, started_at) VALUES ('kept', '2026-01-01')");
    old.close();
    const db = openDatabase(file);
    const store = new Store(db);
    assert.equal(schemaVersion(db), Math.max(...migrations.map((m) => m.version)));
    assert.equal(store.sessionByName('kept')?.name, 'kept');
    assert.deepEqual(store.syncHealth(), []);
    assert.deepEqual(store.syncTrains(), []);
    store.close();
  });

  it('a sync line delays no stop: its debounce is not part of the stop hold', () => {
    const c = parseConfig({ gpio: { inputs: [{ line: 5, mode: 'sync', debounce_ms: 40 }, { line: 6, mode: 'marker', debounce_ms: 3, min_pulse_ms: 2 }] } });
    assert.equal(stopHoldMs(c), 5 + 250);
  });
});
