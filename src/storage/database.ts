import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { migrations } from './migrations.ts';

export type Db = Database.Database;

/** SQLite's page cache per connection, KiB. */
export const PAGE_CACHE_KIB = 2048;

/**
 * Open (or create) the rigcam database: WAL so readers (API) never block the frame writer, and
 * synchronous=NORMAL, which in WAL mode keeps the database consistent through a power cut (the last
 * transactions may be lost; the recordings reconcile from their files).
 */
export function openDatabase(file: string, opts: { readonly?: boolean; exclusive?: boolean } = {}): Db {
  if (!opts.readonly) mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const db = new Database(file, { readonly: opts.readonly ?? false, fileMustExist: opts.readonly ?? false });
  try {
    // Short: a write lock held by another process must not stall the event loop (frame rows are kept and retried).
    db.pragma('busy_timeout = 25');
    // Last resort on a volume too full for the WAL index (-shm): exclusive locking keeps it in memory instead, at the
    // price of no other process (the `rigcam recordings` CLI) reading the database until rigcam restarts.
    if (opts.exclusive) db.pragma('locking_mode = EXCLUSIVE');
    // better-sqlite3 builds SQLite with a 16 MB page cache per connection, which filled as the database grew: RSS
    // crept for as long as the box ran (issue 17). Frame inserts touch a few rightmost pages; reads come from the
    // kernel's page cache, which the kernel can reclaim. After the locking mode: this pragma reads the schema, and
    // an exclusive connection must not touch the -shm before it is exclusive (a full disk: SQLITE_IOERR_SHMSIZE).
    db.pragma(`cache_size = -${PAGE_CACHE_KIB}`);
    if (!opts.readonly) {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.pragma('foreign_keys = ON');
      migrate(db);
    }
  } catch (err) {
    db.close(); // a connection left open would hold its lock against the next attempt in this process
    throw err;
  }
  return db;
}

/** SQLite's quick_check: 'ok', or the first problem it found. */
export function integrityCheck(db: Db): string {
  return String(db.pragma('quick_check', { simple: true }));
}

export function schemaVersion(db: Db): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/** Apply the migrations after the database's version, up to `upTo` (tests make older databases with it). */
export function migrate(db: Db, upTo = Infinity): void {
  const current = schemaVersion(db);
  for (const m of migrations) {
    if (m.version <= current || m.version > upTo) continue;
    db.transaction(() => {
      if ('sql' in m) db.exec(m.sql);
      else m.run(db);
      db.pragma(`user_version = ${m.version}`);
    })();
  }
}
