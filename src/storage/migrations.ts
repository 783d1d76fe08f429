import type { Db } from './database.ts';

/**
 * CHECK lists of more than two values, as migration 1 wrote them. SQLite evaluates `x IN ('a', 'b', 'c')` by
 * building an ephemeral table for every row it checks: an 88 KiB page-cache allocation, which under the unit's
 * MALLOC_MMAP_THRESHOLD_ is an mmap and a munmap, 0.3 ms per INSERT on the reference VM instead of 17 µs, on every
 * trial start's rows and every journal event (issue 17). An OR of equalities is the same constraint without it.
 */
const CHECK_LISTS: ReadonlyArray<{ table: string; column: string; values: string[] }> = [
  { table: 'trials', column: 'state', values: ['recording', 'paused', 'complete', 'interrupted'] },
  { table: 'recordings', column: 'state', values: ['recording', 'complete', 'interrupted'] },
  { table: 'events', column: 'kind', values: ['command', 'status', 'marker', 'log'] },
  { table: 'checksums', column: 'kind', values: ['video', 'csv', 'sidecar', 'mp4'] },
];

/**
 * SQLite cannot alter a CHECK constraint. For changes that leave the stored rows' format alone, its documented way
 * is to edit the table's SQL in sqlite_schema and bump the schema version (https://www.sqlite.org/lang_altertable.html,
 * "Making other kinds of table schema changes"), here inside the migration's transaction: the rows are untouched
 * (every row already satisfies the equivalent constraint), and it takes no time on a large journal. A table whose SQL
 * does not hold the list exactly as shipped is left as it is (still correct, only slower).
 */
function checksWithoutLists(db: Db): void {
  const edits = CHECK_LISTS.flatMap(({ table, column, values }) => {
    const from = `${column} IN (${values.map((v) => `'${v}'`).join(', ')})`;
    const to = `(${values.map((v) => `${column} = '${v}'`).join(' OR ')})`;
    const row = db.prepare("SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?").get(table) as { sql: string } | undefined;
    return row && row.sql.split(from).length === 2 ? [{ table, sql: row.sql.replace(from, to) }] : [];
  });
  if (!edits.length) return;
  const version = db.pragma('schema_version', { simple: true }) as number;
  db.unsafeMode(true); // lifts SQLITE_DBCONFIG_DEFENSIVE, which forbids writing sqlite_schema
  try {
    db.pragma('writable_schema = ON');
    const edit = db.prepare("UPDATE sqlite_schema SET sql = ? WHERE type = 'table' AND name = ?");
    for (const e of edits) edit.run(e.sql, e.table);
    db.pragma(`schema_version = ${version + 1}`); // every connection reads the schema again
  } finally {
    db.pragma('writable_schema = OFF');
    db.unsafeMode(false);
  }
  // The edited schema parses and its tables read; else this throws and the transaction rolls the edit back.
  for (const e of edits) db.prepare(`SELECT * FROM ${e.table} LIMIT 1`).all();
}

/**
 * Schema migrations, applied in order inside one transaction each. Never edit a shipped migration:
 * add a new one, because boxes in the field carry databases made by every earlier version.
 */
export const migrations: ReadonlyArray<{ version: number; name: string; sql: string } | { version: number; name: string; run: (db: Db) => void }> = [
  {
    version: 1,
    name: 'initial',
    sql: `
      CREATE TABLE cameras (
        id TEXT PRIMARY KEY,
        name TEXT,
        backend TEXT NOT NULL,
        stable_id TEXT,
        device_path TEXT,
        updated_at TEXT NOT NULL
      );
      CREATE TABLE sessions (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        metadata TEXT NOT NULL DEFAULT '{}',
        started_at TEXT NOT NULL,
        stopped_at TEXT
      );
      CREATE TABLE trials (
        id INTEGER PRIMARY KEY,
        session_id INTEGER NOT NULL REFERENCES sessions(id),
        number INTEGER NOT NULL,
        label TEXT NOT NULL DEFAULT '',
        state TEXT NOT NULL CHECK (state IN ('recording', 'paused', 'complete', 'interrupted')),
        trigger_source TEXT NOT NULL,
        trigger_mono_us INTEGER,
        metadata TEXT NOT NULL DEFAULT '{}',
        started_at TEXT NOT NULL,
        stopped_at TEXT,
        UNIQUE (session_id, number)
      );
      CREATE TABLE recordings (
        id INTEGER PRIMARY KEY,
        trial_id INTEGER REFERENCES trials(id),
        camera_id TEXT NOT NULL,
        segment INTEGER NOT NULL DEFAULT 0,
        path TEXT NOT NULL UNIQUE,
        csv_path TEXT NOT NULL,
        mp4_path TEXT,
        codec TEXT NOT NULL,
        encoder TEXT NOT NULL,
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        fps_nominal REAL NOT NULL,
        clock TEXT NOT NULL,
        mono0_us INTEGER NOT NULL,
        wall0_us INTEGER NOT NULL,
        trigger_source TEXT,
        trigger_mono_us INTEGER,
        trigger_frame_index INTEGER,
        state TEXT NOT NULL CHECK (state IN ('recording', 'complete', 'interrupted')),
        stop_reason TEXT,
        frame_count INTEGER NOT NULL DEFAULT 0,
        dropped INTEGER NOT NULL DEFAULT 0,
        bytes INTEGER NOT NULL DEFAULT 0,
        offloaded_at TEXT,
        started_at TEXT NOT NULL,
        stopped_at TEXT
      );
      CREATE INDEX recordings_trial ON recordings(trial_id);
      CREATE INDEX recordings_state ON recordings(state);
      CREATE TABLE frames (
        recording_id INTEGER NOT NULL,
        frame_index INTEGER NOT NULL,
        capture_us INTEGER NOT NULL,
        wall_us INTEGER NOT NULL,
        interval_us INTEGER,
        missing_before INTEGER NOT NULL DEFAULT 0,
        pts INTEGER NOT NULL,
        keyframe INTEGER NOT NULL,
        bytes INTEGER NOT NULL,
        flags TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (recording_id, frame_index)
      ) WITHOUT ROWID;
      CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        wall_us INTEGER NOT NULL,
        mono_us INTEGER NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('command', 'status', 'marker', 'log')),
        name TEXT NOT NULL,
        source TEXT,
        camera_id TEXT,
        session_id INTEGER,
        trial_id INTEGER,
        payload TEXT,
        result TEXT
      );
      CREATE INDEX events_kind ON events(kind, id);
    `,
  },
  {
    version: 2,
    name: 'retention',
    sql: `ALTER TABLE recordings ADD COLUMN deleted_at TEXT;`,
  },
  {
    version: 3,
    name: 'marker-index',
    // Markers are read per trial and per session (session view, frames.csv): without these, each lookup
    // scanned every event of the journal (12 s with 30k markers, the event loop blocked).
    sql: `CREATE INDEX IF NOT EXISTS events_marker_trial ON events(trial_id, mono_us) WHERE kind = 'marker';`,
  },
  {
    version: 4,
    name: 'clocks and trial bounds',
    sql: `
      ALTER TABLE recordings ADD COLUMN stop_hold_ms INTEGER;
      ALTER TABLE recordings ADD COLUMN clock_source TEXT;
      ALTER TABLE recordings ADD COLUMN late_start_us INTEGER;
      ALTER TABLE recordings ADD COLUMN preroll_s REAL;
      ALTER TABLE trials ADD COLUMN mono0_us INTEGER;
      ALTER TABLE trials ADD COLUMN wall0_us INTEGER;
      ALTER TABLE trials ADD COLUMN pair_uncertainty_us REAL;
      ALTER TABLE trials ADD COLUMN time_sync TEXT;
      ALTER TABLE trials ADD COLUMN trigger_clock TEXT;
    `,
  },
  {
    version: 5,
    name: 'checksums and verified offload',
    // One SHA-256 per file of a recording (video .ts, CSV, JSON sidecar, .mp4), computed when it closes; an
    // offload counts as verified only when the copy's hashes matched these (retention may then require it).
    sql: `
      CREATE TABLE checksums (
        recording_id INTEGER NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('video', 'csv', 'sidecar', 'mp4')),
        path TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        computed_at TEXT NOT NULL,
        PRIMARY KEY (recording_id, kind)
      ) WITHOUT ROWID;
      ALTER TABLE recordings ADD COLUMN offload_verified_at TEXT;
    `,
  },
  {
    version: 6,
    name: 'sync pulses',
    // Sync pulse edges in (a GPIO input's kernel times) and out (the train this box emits), a table of their own.
    // A run is one start of the GPIO lines: CLOCK_MONOTONIC restarts at boot, so every edge names its boot.
    sql: `
      CREATE TABLE sync_runs (
        id INTEGER PRIMARY KEY,
        host TEXT NOT NULL,
        boot_id TEXT NOT NULL,
        pid INTEGER NOT NULL,
        started_at TEXT NOT NULL,
        mono0_us INTEGER NOT NULL,
        wall0_us INTEGER NOT NULL,
        pair_uncertainty_us REAL,
        time_sync TEXT,
        config TEXT NOT NULL DEFAULT '{}'
      );
      CREATE TABLE sync_edges (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES sync_runs(id),
        direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
        line INTEGER NOT NULL,
        active INTEGER NOT NULL,
        mono_us INTEGER NOT NULL,
        clock TEXT NOT NULL,
        uncertainty_us REAL,
        seq INTEGER,
        session_id INTEGER,
        trial_id INTEGER
      );
      CREATE INDEX sync_edges_line ON sync_edges(run_id, direction, line, id);
    `,
  },
  {
    version: 7,
    name: 'CSI sync and hardware trigger per recording',
    // A CSI camera's rpicam-vid --sync state (JSON) when each recording file opened; an externally triggered
    // camera's trigger settings (JSON: pulse line, lag, tolerance), to match its frames to the pulses.
    sql: `
      ALTER TABLE recordings ADD COLUMN camera_sync TEXT;
      ALTER TABLE recordings ADD COLUMN hw_trigger TEXT;
    `,
  },
  {
    version: 8,
    name: 'CHECK lists as ORs',
    run: checksWithoutLists,
  },
];
