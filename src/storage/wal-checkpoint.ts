/** Runs a tool (the service's ToolShell: no fork of rigcam's Node process) and gives what it printed. */
export type CheckpointRunner = (command: string, args: string[], timeoutMs: number) => Promise<{ found: boolean; exitCode: number; stdout: string }>;

/** What one PASSIVE checkpoint did (SQLite's `PRAGMA wal_checkpoint` row). */
export interface CheckpointResult {
  /** Another checkpoint held the lock: nothing was done this time. */
  busy: boolean;
  /** Pages in the WAL. */
  walPages: number;
  /** Of them, pages now also in the database file (all of them: the next commit starts the WAL over). */
  checkpointed: number;
}

export const CHECKPOINT_TOOL = 'sqlite3';

/**
 * Checkpoint a WAL database from another process: the sqlite3 command-line tool copies the committed pages into the
 * database and does both fsyncs (WAL, then database), in SQLite's own order, while rigcam's connection keeps
 * committing (PASSIVE: it never waits for, nor blocks, a writer). `-init /dev/null` keeps a ~/.sqliterc out of it.
 * Throws with what went wrong (tool missing, failed, timed out, unreadable answer).
 */
export async function checkpointElsewhere(file: string, run: CheckpointRunner, timeoutMs: number): Promise<CheckpointResult> {
  const r = await run(CHECKPOINT_TOOL, ['-batch', '-init', '/dev/null', file, 'PRAGMA wal_checkpoint(PASSIVE);'], timeoutMs);
  if (!r.found) throw new Error(`${CHECKPOINT_TOOL} is not installed`);
  if (r.exitCode === 124) throw new Error(`${CHECKPOINT_TOOL} did not finish within ${timeoutMs} ms`);
  const m = /^(\d+)\|(-?\d+)\|(-?\d+)$/m.exec(r.stdout);
  if (r.exitCode !== 0 || !m) throw new Error(`${CHECKPOINT_TOOL} failed (exit ${r.exitCode}): ${r.stdout.trim().slice(0, 200) || 'no answer'}`);
  return { busy: m[1] !== '0', walPages: Number(m[2]), checkpointed: Number(m[3]) };
}
