import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from '../log/logger.ts';
import type { FrameRow } from '../timing/frame-row.ts';
import { parseTimingCsv, type CsvFrameRow } from '../timing/csv-format.ts';
import { integrityCheck, openDatabase, type Db } from './database.ts';
import { readTsFile, reconcileAll, RowRebuilder, rewriteCsv, type FileFrame, type ReconcileReport } from './reconcile.ts';
import { replaceFile, syncDir } from './durable-file.ts';
import { bootId, readSidecar, replaceSidecar, sidecarPathFor, type Sidecar } from './sidecar.ts';
import { Store, salvageFrom, type RecordingRow, type Salvage } from './store.ts';

const run = promisify(execFile);

export interface OpenedStore {
  /** The database's one owner; close it with `store.close()`. */
  store: Store;
  /** Where a corrupt database was moved to, if that happened. */
  quarantined: string | null;
  /** Recordings registered from the files on disk (orphans adopted, or everything after a database loss). */
  rebuilt: number;
  /** Recordings on disk that could not be registered, each with the reason (the others are registered). */
  failed: Array<{ path: string; error: string }>;
  reconciled: ReconcileReport[];
  /** The adoption and reconcile a full disk postponed (`postpone`): run it once there is room. Null when done. */
  pending: (() => Promise<Recovered>) | null;
}

/** What the start-up recovery did: orphan files adopted (a rebuild), failures, recordings reconciled. */
export interface Recovered {
  rebuilt: number;
  failed: Array<{ path: string; error: string }>;
  reconciled: ReconcileReport[];
}

/** The database exists but cannot be used for a reason that is not corruption (permission, lock, migration). */
export class DatabaseOpenError extends Error {
  constructor(
    message: string,
    /** SQLite's or the file system's error code. */
    readonly code: string | null = null,
  ) {
    super(message);
  }

  /** The volume is full (SQLite cannot even create the -shm of a WAL database then). */
  get diskFull(): boolean {
    return /^(SQLITE_FULL|SQLITE_IOERR_SHM|ENOSPC|EDQUOT)/.test(this.code ?? '');
  }
}

const CORRUPT_CODES = /^SQLITE_(CORRUPT|NOTADB)/;

/** Only SQLite saying the file itself is damaged justifies moving a database aside. */
function isCorruption(err: unknown): boolean {
  return err instanceof CorruptDatabase || CORRUPT_CODES.test(String((err as { code?: unknown }).code ?? ''));
}

class CorruptDatabase extends Error {}

/** `<db>.rebuild`: a rebuild is owed (and what to salvage); removed only once the rebuild has committed. */
function markerOf(file: string): string {
  return `${file}.rebuild`;
}

/**
 * Open the database for the service. A database SQLite reports as corrupt (or that fails quick_check) is moved aside,
 * never deleted, and a new one is rebuilt from the recordings on disk, salvaging what SQLite can still read of the
 * old one; any other failure (permission, lock, migration) throws a DatabaseOpenError and moves nothing. Then, at
 * every start, video files the database does not know are adopted (one transaction; a failed rebuild is retried at
 * the next start), and every recording left in state `recording` is reconciled with its file.
 */
export async function openStoreWithRecovery(file: string, root: string, log: Logger, opts: { postpone?: boolean; exclusive?: boolean } = {}): Promise<OpenedStore> {
  let db: Db | null = null;
  let quarantined: string | null = null;
  try {
    db = openDatabase(file, { exclusive: opts.exclusive });
    const check = integrityCheck(db);
    if (check !== 'ok') throw new CorruptDatabase(`integrity check failed: ${check}`);
  } catch (err) {
    try {
      db?.close();
    } catch {
      /* already unusable */
    }
    db = null;
    if (!isCorruption(err) || !existsSync(file)) {
      const code = (err as { code?: string }).code ?? null;
      const e = new DatabaseOpenError(`cannot open the database ${file}: ${(err as Error).message}${code ? ` (${code})` : ''}. It was not moved: `, code);
      e.message += e.diskFull
        ? 'its volume is full. Free some space (or mark recordings offloaded so that retention may delete them) and start again.'
        : 'check the permissions of the data directory and its rigcam.db* files, and that no other rigcam uses it.';
      throw e;
    }
    quarantined = `${file}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    renameSync(file, quarantined);
    for (const ext of ['-wal', '-shm']) if (existsSync(file + ext)) renameSync(file + ext, quarantined + ext);
    syncDir(path.dirname(file));
    // Written before anything is rebuilt: if the rebuild does not commit, the next start salvages and rebuilds again.
    writeMarker(file, quarantined);
    log.error({ err: (err as Error).message, kept_as: quarantined }, 'database corrupt: kept aside, rebuilding from the recordings on disk');
    db = openDatabase(file, { exclusive: opts.exclusive });
  }
  const store = new Store(db);
  quarantined ??= readMarker(file)?.salvage_from ?? null;
  const recover = (): Promise<Recovered> => recoverFromDisk(store, file, root, log);
  // A full disk: the service still starts (it refuses trials and says why) and runs this once there is room.
  if (opts.postpone) return { store, quarantined, rebuilt: 0, failed: [], reconciled: [], pending: recover };
  try {
    return { store, quarantined, ...(await recover()), pending: null };
  } catch (err) {
    // Did not commit (the disk filled, a lock held): the service starts anyway and retries it at a later poll.
    log.error({ err: (err as Error).message }, 'recovering the recordings on disk failed: retried once there is room');
    return { store, quarantined, rebuilt: 0, failed: (err as { failed?: Recovered['failed'] }).failed ?? [], reconciled: [], pending: recover };
  }
}

/**
 * Adopt the video files the database does not know (salvaging from a quarantined database when a rebuild is owed),
 * then reconcile every recording left in state `recording` with its file. Both write: database rows, CSVs, sidecars.
 */
async function recoverFromDisk(store: Store, file: string, root: string, log: Logger): Promise<Recovered> {
  const marker = readMarker(file);
  const salvage = marker?.salvage_from ? salvageDatabase(marker.salvage_from, log) : null;
  const { adopted, failed, committed } = await adoptOrphans(store, root, log, salvage);
  if (marker && committed) removeMarker(file);
  if (!committed) throw Object.assign(new Error(`registering the recordings on disk did not commit: ${failed.at(-1)?.error ?? ''}`), { failed });
  const reconciled = await reconcileAll(store, root, log);
  return { rebuilt: adopted, failed, reconciled };
}

function writeMarker(file: string, salvageFrom: string | null): void {
  // Plain JSON, replaced atomically (temp name, fsync, rename, directory fsync); it names the database to salvage from.
  replaceFile(markerOf(file), JSON.stringify({ salvage_from: salvageFrom, at: new Date().toISOString() }) + '\n');
}

function readMarker(file: string): { salvage_from: string | null } | null {
  try {
    const v = JSON.parse(readFileSync(markerOf(file), 'utf8')) as { salvage_from?: unknown };
    return { salvage_from: typeof v.salvage_from === 'string' && existsSync(v.salvage_from) ? v.salvage_from : null };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    return { salvage_from: null }; // an unreadable marker still says a rebuild is owed
  }
}

function removeMarker(file: string): void {
  rmQuiet(markerOf(file));
  syncDir(path.dirname(file));
}

function rmQuiet(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    /* not there */
  }
}

/** What SQLite can still read of a quarantined database (nothing, if it cannot be opened at all). */
function salvageDatabase(file: string, log: Logger): Salvage {
  let old: Db | null = null;
  try {
    old = openDatabase(file, { readonly: true });
    const s = salvageFrom(old);
    log.warn({ from: file, sessions: s.sessions.length, trials: s.trials.length, events: s.events.length, unreadable: s.failures }, 'salvaged from the corrupt database');
    return s;
  } catch (err) {
    log.error({ from: file, err: (err as Error).message }, 'nothing could be salvaged from the corrupt database');
    return { sessions: [], trials: [], recordings: [], events: [], failures: [(err as Error).message] };
  } finally {
    try {
      old?.close();
    } catch {
      /* unusable */
    }
  }
}

/** The database for a one-off command (no recovery: `rigcam serve` does that at start-up). */
export function openStore(file: string): Store {
  return new Store(openDatabase(file));
}

/** The database of a box for a read-only tool (`rigcam verify`): no migration, no write. */
export function openStoreReadonly(file: string): Store {
  return new Store(openDatabase(file, { readonly: true }));
}

const FILE_RE = /^(.+)_trial(\d{3,})_([A-Za-z0-9][A-Za-z0-9_-]*?)(?:_seg(\d{2,}))?\.(ts|mp4)$/;

interface FoundVideo {
  session: string;
  trialNo: number;
  camera: string;
  segment: number;
  /** The video registered as the recording's path: the .ts, or the .mp4 when only that is left. */
  rel: string;
  mp4Rel: string | null;
  csvRel: string;
  sidecar: Sidecar | null;
}

interface Collected extends FoundVideo {
  frames: FileFrame[];
  torn: boolean;
  csv: CsvFrameRow[];
  width: number;
  height: number;
  bytes: number;
  mtimeUs: number;
}

/** Video files under the root (`<session>/<session>_trial<NNN>_<camera>[_segNN].ts|.mp4`) the database does not know. */
function findOrphans(store: Store, root: string, log: Logger): FoundVideo[] {
  if (!existsSync(root)) return [];
  const out: FoundVideo[] = [];
  const me = bootId();
  const known = store.knownVideoPaths();
  for (const dir of readdirSync(root, { withFileTypes: true })) {
    if (!dir.isDirectory()) continue;
    const session = dir.name;
    const names = new Set(readdirSync(path.join(root, session)));
    for (const name of [...names].sort()) {
      const m = FILE_RE.exec(name);
      if (!m || m[1] !== session) continue;
      const ext = m[5]!;
      const base = name.slice(0, -ext.length - 1);
      if (ext === 'mp4' && names.has(`${base}.ts`)) continue; // the .ts is the recording; the .mp4 its remux
      const rel = path.join(session, name);
      if (known.has(rel)) continue;
      const mp4Rel = ext === 'mp4' ? rel : names.has(`${base}.mp4`) ? path.join(session, `${base}.mp4`) : null;
      if (mp4Rel && known.has(mp4Rel)) continue;
      const sidecar = readSidecar(path.join(root, rel));
      // Never touch a file another live rigcam on this boot is still writing.
      if (sidecar && sidecar.state === 'recording' && sidecar.owner.boot_id === me && sidecar.owner.pid !== process.pid && pidAlive(sidecar.owner.pid)) {
        log.warn({ path: rel, pid: sidecar.owner.pid }, 'not adopted: another live process is writing it');
        continue;
      }
      out.push({
        session,
        trialNo: Number(m[2]),
        camera: m[3]!,
        segment: m[4] ? Number(m[4]) : 0,
        rel,
        mp4Rel,
        csvRel: path.join(session, `${base}.csv`),
        sidecar,
      });
    }
  }
  return out;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function probeVideo(file: string): Promise<{ width: number; height: number; frames: FileFrame[] | null }> {
  const mp4 = file.endsWith('.mp4');
  const args = ['-v', 'error', '-select_streams', 'v:0', '-show_entries', mp4 ? 'stream=width,height,time_base:packet=pts,flags,size' : 'stream=width,height', '-of', 'json', file];
  const { stdout } = await run('ffprobe', args, { maxBuffer: 1 << 28 });
  const j = JSON.parse(stdout) as { streams?: Array<{ width?: number; height?: number; time_base?: string }>; packets?: Array<{ pts?: number; flags?: string; size?: string }> };
  const st = j.streams?.[0];
  let frames: FileFrame[] | null = null;
  if (mp4) {
    const [num, den] = (st?.time_base ?? '1/90000').split('/').map(Number) as [number, number];
    frames = (j.packets ?? []).map((p) => ({
      ptsRaw: Math.round(((p.pts ?? 0) * num * 90000) / den),
      keyframe: (p.flags ?? '').startsWith('K'),
      bytes: Number(p.size ?? 0),
      discontinuity: false,
    }));
  }
  return { width: st?.width ?? 0, height: st?.height ?? 0, frames };
}

async function collect(root: string, f: FoundVideo): Promise<Collected> {
  const abs = path.join(root, f.rel);
  const st = statSync(abs);
  const probe = await probeVideo(abs).catch(() => ({ width: 0, height: 0, frames: null }));
  let frames: FileFrame[];
  let torn = false;
  if (f.rel.endsWith('.ts')) ({ frames, torn } = await readTsFile(abs));
  else if (probe.frames) frames = probe.frames;
  else throw new Error('ffprobe could not read the .mp4');
  const csvFile = path.join(root, f.csvRel);
  const csv = existsSync(csvFile) ? parseTimingCsv(readFileSync(csvFile, 'utf8')) : [];
  return { ...f, frames, torn, csv, width: probe.width || (f.sidecar?.recording.width ?? 0), height: probe.height || (f.sidecar?.recording.height ?? 0), bytes: st.size, mtimeUs: Math.round(st.mtimeMs * 1000) };
}

/**
 * Register every video file under the root the database does not know (after a database loss: all of them), with
 * what its sidecar, CSV and salvaged rows say; everything in one transaction, so a rebuild never half-finishes (the
 * `.rebuild` marker, removed after the commit, makes the next start redo it). A file that cannot be read is
 * skipped and reported; the others are registered.
 */
export async function adoptOrphans(
  store: Store,
  root: string,
  log: Logger,
  salvage: Salvage | null = null,
): Promise<{ adopted: number; failed: Array<{ path: string; error: string }>; committed: boolean }> {
  const found = findOrphans(store, root, log);
  const failed: Array<{ path: string; error: string }> = [];
  const collected: Collected[] = [];
  for (const f of found) {
    try {
      collected.push(await collect(root, f));
    } catch (err) {
      failed.push({ path: f.rel, error: (err as Error).message });
    }
  }
  if (!collected.length && !salvage) {
    for (const f of failed) log.error(f, 'recording on disk could not be registered');
    return { adopted: 0, failed, committed: true };
  }
  const rewrite: number[] = [];
  try {
    store.transaction(() => {
      if (salvage) restoreSalvage(store, salvage);
      for (const c of collected) {
        try {
          store.transaction(() => {
            const id = register(store, c, salvage);
            if (store.recording(id)!.state !== 'complete') rewrite.push(id);
          });
        } catch (err) {
          failed.push({ path: c.rel, error: (err as Error).message });
        }
      }
      if (salvage) restoreEvents(store, salvage);
      store.closeRebuiltTrials();
    });
  } catch (err) {
    // Nothing of it was committed (a full disk, a lock): the service still starts; the next start tries again.
    log.error({ err: (err as Error).message, recordings: collected.length }, 'registering the recordings on disk did not commit: retried at the next start');
    return { adopted: 0, failed: [...failed, ...collected.map((c) => ({ path: c.rel, error: `not committed: ${(err as Error).message}` }))], committed: false };
  }
  const adopted = collected.length - failed.filter((f) => collected.some((c) => c.rel === f.path)).length;
  // Derived files after the commit: the CSV of a recording adopted from its video is rewritten to match it.
  for (const id of rewrite) {
    const rec = store.recording(id)!;
    try {
      rewriteCsv(store, root, rec);
      completeSidecar(root, rec);
    } catch (err) {
      log.error({ recording: id, err: (err as Error).message }, 'adopted recording: CSV not rewritten');
    }
  }
  for (const f of failed) log.error(f, 'recording on disk could not be registered');
  if (adopted) log.warn({ recordings: adopted, failed: failed.length, salvaged: salvage !== null }, 'recordings on disk the database did not know were registered');
  return { adopted, failed, committed: true };
}

function restoreSalvage(store: Store, s: Salvage): void {
  for (const sess of s.sessions) store.restoreSession(sess);
  for (const t of s.trials) {
    const sess = store.sessionByName(t.session) ?? store.restoreSession({ name: t.session, metadata: '{}', started_at: t.started_at, stopped_at: null });
    store.restoreTrial(sess.id, t);
  }
}

function restoreEvents(store: Store, s: Salvage): void {
  for (const e of s.events) {
    const sess = e.session ? store.sessionByName(e.session) : undefined;
    const trial = sess && e.trial_number !== null ? store.trialByNumber(sess.id, e.trial_number) : undefined;
    store.restoreEvent(e, sess?.id ?? null, trial?.id ?? null);
  }
}

/** One adopted recording's rows. Returns its id. */
function register(store: Store, c: Collected, salvage: Salvage | null): number {
  const sc = c.sidecar;
  const frames = c.torn ? c.frames.slice(0, -1) : c.frames; // a torn last frame is not a whole frame
  const isTs = c.rel.endsWith('.ts');
  // The CSV's rows as far as they agree with the file (same index; for a .ts the same PTS too).
  let agree = 0;
  while (agree < c.csv.length && agree < frames.length && c.csv[agree]!.index === agree + 1 && (!isTs || c.csv[agree]!.pts === frames[agree]!.ptsRaw)) agree += 1;
  const csvWhole = agree === frames.length && c.csv.length === frames.length;
  const sess = store.sessionByName(c.session) ?? store.openSession(c.session, sc?.session.metadata ?? {});
  const label = sc?.trial?.label ?? c.csv[0]?.label ?? '';
  const trial =
    store.trialByNumber(sess.id, c.trialNo) ??
    store.restoreTrial(sess.id, {
      number: c.trialNo,
      label,
      state: 'recording',
      trigger_source: 'unknown', // closed by closeRebuiltTrials from its recordings' states
      trigger_mono_us: sc?.trial?.trigger_mono_us ?? null,
      metadata: JSON.stringify(sc?.trial?.metadata ?? {}),
      started_at: sc?.recording.started_at ?? new Date(c.mtimeUs / 1000).toISOString(),
      stopped_at: null,
      session: c.session,
    });
  const intervals = c.csv.map((r) => r.intervalUs).filter((x): x is number => x !== null).sort((a, b) => a - b);
  const median = intervals[Math.floor(intervals.length / 2)];
  // The clock anchor: the sidecar's pair, else the CSV's first row, else the file's first PTS placed so the last
  // frame is at the file's modification time (never the raw PTS against the wall clock: that is off by the uptime).
  let mono0: number;
  let wall0: number;
  if (sc) ({ mono0_us: mono0, wall0_us: wall0 } = sc.recording);
  else if (c.csv[0]) ({ captureUs: mono0, wallUs: wall0 } = c.csv[0]);
  else {
    const first = frames[0]?.ptsRaw ?? 0;
    const last = frames.at(-1)?.ptsRaw ?? first;
    mono0 = Math.round((first * 1e6) / 90000);
    wall0 = c.mtimeUs - Math.round(((last - first) * 1e6) / 90000);
  }
  store.upsertCamera({ id: c.camera, backend: sc?.camera.backend ?? 'unknown' });
  const id = store.createRecording({
    trialId: trial.id,
    cameraId: c.camera,
    segment: c.segment,
    path: c.rel,
    csvPath: c.csvRel,
    codec: sc?.recording.codec ?? 'h264',
    encoder: sc?.recording.encoder ?? 'unknown',
    width: c.width,
    height: c.height,
    fpsNominal: sc?.recording.fps_nominal ?? (median ? Math.round(1e7 / median) / 10 : 0),
    clock: sc?.recording.clock ?? 'monotonic',
    mono0Us: mono0,
    wall0Us: wall0,
    triggerSource: sc?.recording.trigger_source ?? null,
    triggerMonoUs: sc?.recording.trigger_mono_us ?? null,
  });
  if (c.mp4Rel) store.setMp4(id, c.mp4Rel, true);
  const rec = store.recording(id)!;
  const rows: FrameRow[] = c.csv.slice(0, agree).map(({ label: _label, ...r }) => ({ recordingId: id, ...r }));
  const lastKnown = rows.at(-1);
  const rebuilder = new RowRebuilder(rec, lastKnown ? { index: lastKnown.index, pts: isTs ? lastKnown.pts : frames[agree - 1]!.ptsRaw, captureUs: lastKnown.captureUs } : null);
  for (let i = agree; i < frames.length; i++) rows.push(rebuilder.next(frames[i]!));
  store.insertFrames(rows);
  const whole = csvWhole && !c.torn && (sc === null || sc.state === 'complete');
  const why = !sc ? 'no sidecar' : sc.state === 'recording' ? 'the recording never stopped' : `sidecar says ${sc.state}`;
  store.finishRecording(id, {
    state: whole ? 'complete' : 'interrupted',
    frames: frames.length,
    dropped: rows.reduce((s, r) => s + r.missingBefore, 0),
    bytes: c.bytes,
    reason: whole
      ? 'registered from the files on disk (the database did not know it)'
      : `registered from the files on disk (the database did not know it; ${why}; ${agree} of ${frames.length} rows from the CSV, the rest from the video${c.torn ? '; torn last frame not counted' : ''})`,
  });
  const old = salvage?.recordings.find((r) => r.path === c.rel || (c.mp4Rel !== null && (r.mp4_path === c.mp4Rel || r.path === c.mp4Rel)));
  if (old) store.restoreRecordingMarks(id, old);
  return id;
}

/** An adopted recording's sidecar now says what the database says (it was left at `recording` by a crash). */
function completeSidecar(root: string, rec: RecordingRow): void {
  const sc = readSidecar(path.join(root, rec.path));
  if (!sc || sc.state !== 'recording') return;
  replaceSidecar(sidecarPathFor(path.join(root, rec.path)), { ...sc, state: rec.state, frames: rec.frame_count, dropped: rec.dropped, stop_reason: rec.stop_reason, stopped_at: rec.stopped_at });
}
