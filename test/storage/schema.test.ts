/**
 * The schema as migrations leave it: migration 8 rewrote migration 1's CHECK lists (`state IN (...)`), which made
 * SQLite build an ephemeral table for every row written (0.3 ms per INSERT under the unit's malloc settings), as
 * ORs of equalities, by editing sqlite_schema. These tests hold that the edit keeps every row and the same
 * constraint, and that nothing in the schema builds an ephemeral table per row again.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { migrate, openDatabase, schemaVersion, type Db } from '../../src/storage/database.ts';
import { migrations } from '../../src/storage/migrations.ts';
import { tmpDir } from '../helpers/tmp.ts';

const LATEST = Math.max(...migrations.map((m) => m.version));

/** The tables whose INSERT compiles an OpenEphemeral (a CHECK list of more than two values, or anything like it). */
function tablesBuildingEphemeral(db: Db): string[] {
  const tables = (db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as Array<{ name: string }>).map((r) => r.name);
  assert.ok(tables.length >= 9, `tables: ${tables.join(', ')}`);
  return tables.filter((t) => (db.prepare(`EXPLAIN INSERT INTO ${t} DEFAULT VALUES`).all() as Array<{ opcode: string }>).some((op) => op.opcode === 'OpenEphemeral'));
}

/** A database as version 7 left it, with a row in each table migration 8 edits. */
function version7(file: string): void {
  const old = new Database(file);
  migrate(old, 7);
  assert.equal(schemaVersion(old), 7);
  old.exec(`
    INSERT INTO sessions (id, name, started_at) VALUES (1, 'kept, "quoted"', '2026-01-01');
    INSERT INTO trials (id, session_id, number, state, trigger_source, started_at) VALUES (1, 1, 1, 'interrupted', 'http', '2026-01-01');
    INSERT INTO recordings (id, trial_id, camera_id, path, csv_path, codec, encoder, width, height, fps_nominal, clock, mono0_us, wall0_us, state, started_at)
      VALUES (1, 1, 'cam0', 's/a.ts', 's/a.csv', 'h264', 'libx264', 640, 480, 30, 'monotonic', 1, 2, 'complete', '2026-01-01');
    INSERT INTO events (wall_us, mono_us, kind, name) VALUES (1, 2, 'marker', 'lever');
    INSERT INTO checksums (recording_id, kind, path, bytes, sha256, computed_at) VALUES (1, 'sidecar', 's/a.json', 10, 'ab', '2026-01-01');
  `);
  assert.deepEqual(tablesBuildingEphemeral(old), ['checksums', 'events', 'recordings', 'trials'], 'the v7 schema builds them (else this test proves nothing)');
  old.close();
}

describe('schema', () => {
  it('migrating a v7 database rewrites its CHECK lists in place: rows kept, the same values accepted and refused', () => {
    const file = path.join(tmpDir('rigcam-schema-'), 'rigcam.db');
    version7(file);
    const db = openDatabase(file);
    try {
      assert.equal(schemaVersion(db), LATEST);
      assert.deepEqual(tablesBuildingEphemeral(db), []);
      for (const t of ['trials', 'recordings', 'events', 'checksums']) {
        const sql = (db.prepare("SELECT sql FROM sqlite_schema WHERE name = ?").get(t) as { sql: string }).sql;
        assert.doesNotMatch(sql, / IN \(/, `${t}: ${sql}`);
      }
      assert.equal(String(db.pragma('integrity_check', { simple: true })), 'ok');
      assert.deepEqual(db.prepare('SELECT name FROM sessions').all(), [{ name: 'kept, "quoted"' }]);
      assert.deepEqual(db.prepare('SELECT state FROM trials').all(), [{ state: 'interrupted' }]);
      assert.deepEqual(db.prepare('SELECT state FROM recordings').all(), [{ state: 'complete' }]);
      assert.deepEqual(db.prepare('SELECT kind, name FROM events').all(), [{ kind: 'marker', name: 'lever' }]);
      assert.deepEqual(db.prepare('SELECT kind FROM checksums').all(), [{ kind: 'sidecar' }]);

      // The same constraint: every listed value is accepted, anything else (a near miss, another case, NULL) refused.
      const cases: Array<{ sql: string; ok: string[]; bad: Array<string | null> }> = [
        { sql: "UPDATE trials SET state = ? WHERE id = 1", ok: ['recording', 'paused', 'complete', 'interrupted'], bad: ['stopped', 'Complete', 'complete ', null] },
        { sql: "UPDATE recordings SET state = ? WHERE id = 1", ok: ['recording', 'complete', 'interrupted'], bad: ['paused', 'COMPLETE', ''] },
        { sql: "INSERT INTO events (wall_us, mono_us, kind, name) VALUES (1, 2, ?, 'x')", ok: ['command', 'status', 'marker', 'log'], bad: ['markers', 'statu', null] },
        { sql: "INSERT OR REPLACE INTO checksums (recording_id, kind, path, bytes, sha256, computed_at) VALUES (1, ?, 'p', 1, 'h', 'now')", ok: ['video', 'csv', 'sidecar', 'mp4'], bad: ['mkv', "video' OR '1'='1"] },
      ];
      const st = db.prepare('SAVEPOINT probe');
      for (const c of cases) {
        const q = db.prepare(c.sql);
        for (const v of c.ok) {
          st.run();
          q.run(v);
          db.exec('ROLLBACK TO probe; RELEASE probe');
        }
        for (const v of c.bad) assert.throws(() => q.run(v), /CHECK constraint failed|NOT NULL constraint failed/, `${c.sql} with ${JSON.stringify(v)}`);
      }
      // The edit's write access to sqlite_schema ended with the migration (defensive mode is back on).
      db.pragma('writable_schema = ON');
      assert.throws(() => db.prepare('UPDATE sqlite_schema SET sql = sql').run(), /may not be modified/);
    } finally {
      db.close();
    }
  });

  it('a new database has no table whose rows build an ephemeral table', () => {
    const db = openDatabase(path.join(tmpDir('rigcam-schema-'), 'rigcam.db'));
    try {
      assert.equal(schemaVersion(db), LATEST);
      assert.deepEqual(tablesBuildingEphemeral(db), []);
      assert.equal(String(db.pragma('integrity_check', { simple: true })), 'ok');
    } finally {
      db.close();
    }
  });
});
