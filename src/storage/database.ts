import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { migrations } from './migrations.ts';

export type Db = Database.Database;

/**
 * Open (or create) the rigcam database: WAL so readers (API) never block the frame writer, and
 * synchronous=NORMAL, which in WAL mode keeps the database consistent through a power cut (the last
 * transactions may be lost; the recordings reconcile from their files).
 */
export function openDatabase(file: string, opts: { readonly?: boolean } = {}): Db {
  if (!opts.readonly) mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const db = new Database(file, { readonly: opts.readonly ?? false, fileMustExist: opts.readonly ?? false });
  // Short: a write lock held by another process must not stall the event loop (frame rows are kept and retried).
  db.pragma('busy_timeout = 25');
  if (!opts.readonly) {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    migrate(db);
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

export function migrate(db: Db): void {
  const current = schemaVersion(db);
  for (const m of migrations) {
    if (m.version <= current) continue;
    db.transaction(() => {
      db.exec(m.sql);
      db.pragma(`user_version = ${m.version}`);
    })();
  }
}
