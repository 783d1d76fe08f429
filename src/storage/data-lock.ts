import Database from 'better-sqlite3';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { bootId } from './sidecar.ts';

/** Another process holds the data directory (or the lock cannot be taken). */
export class DataDirLockedError extends Error {}

/** Held locks: referenced here so the connection (and with it the lock) is never garbage-collected away. */
const held = new Set<Database.Database>();

export interface DataDirLock {
  readonly file: string;
  release(): void;
}

/**
 * One writer per data directory: `<data_dir>/rigcam.lock` held with an exclusive SQLite lock (a POSIX record lock
 * the kernel drops when the process dies, so a crash or kill -9 never leaves a stale lock behind). A second process
 * on the same directory gets a clear error and changes nothing; `rigcam.lock.owner` says who holds it.
 */
export function lockDataDir(dataDir: string): DataDirLock {
  mkdirSync(dataDir, { recursive: true });
  const file = path.join(dataDir, 'rigcam.lock');
  const ownerFile = `${file}.owner`;
  let db: Database.Database | null = null;
  try {
    db = new Database(file);
    db.pragma('busy_timeout = 0');
    db.pragma('locking_mode = EXCLUSIVE');
    // BEGIN EXCLUSIVE takes the exclusive lock; in EXCLUSIVE locking mode it is kept until the connection closes.
    // It writes nothing to a lock file that already has a table, so a box restarted on a full disk can still lock.
    db.exec('BEGIN EXCLUSIVE; COMMIT;');
    try {
      db.exec('CREATE TABLE IF NOT EXISTS holder (pid INTEGER)'); // once, so later starts write nothing
    } catch (err) {
      if (!isFull(err)) throw err; // a new lock file on a full disk: still locked, the table comes at a later start
    }
  } catch (err) {
    try {
      db?.close();
    } catch {
      /* not open */
    }
    const code = (err as { code?: string }).code ?? '';
    if (/^SQLITE_(BUSY|LOCKED)/.test(code)) {
      let owner = '';
      try {
        const o = JSON.parse(readFileSync(ownerFile, 'utf8')) as { pid?: number; started_at?: string };
        owner = ` (pid ${o.pid ?? '?'}, since ${o.started_at ?? '?'})`;
      } catch {
        /* no owner file */
      }
      throw new DataDirLockedError(`the data directory ${dataDir} is in use by another rigcam process${owner}: stop it first (one writer per data directory)`);
    }
    throw new DataDirLockedError(`cannot lock the data directory ${dataDir}: ${(err as Error).message}${code ? ` (${code})` : ''}`);
  }
  try {
    writeFileSync(ownerFile, JSON.stringify({ pid: process.pid, boot_id: bootId(), started_at: new Date().toISOString() }) + '\n');
  } catch {
    /* informational only */
  }
  const conn = db;
  held.add(conn);
  return {
    file,
    release: () => {
      held.delete(conn);
      if (conn.open) conn.close();
    },
  };
}

function isFull(err: unknown): boolean {
  return /^SQLITE_FULL/.test(String((err as { code?: unknown }).code ?? ''));
}
