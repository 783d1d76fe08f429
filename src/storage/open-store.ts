import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, renameSync, statSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from '../log/logger.ts';
import type { FrameRow } from '../timing/frame-row.ts';
import { parseTimingCsv } from '../timing/csv-format.ts';
import { integrityCheck, openDatabase, type Db } from './database.ts';
import { readTsFrames, reconcileAll, rebuildRows, rewriteCsv, type ReconcileReport } from './reconcile.ts';
import { Store } from './store.ts';

const run = promisify(execFile);

export interface OpenedStore {
  /** The database's one owner; close it with `store.close()`. */
  store: Store;
  /** Where a database that could not be opened was moved to, if that happened. */
  quarantined: string | null;
  /** Recordings re-registered from the files on disk after a database loss. */
  rebuilt: number;
  reconciled: ReconcileReport[];
}

/**
 * Open the database for the service: integrity check first; a database that cannot be opened or fails the check
 * is moved aside (never deleted or silently replaced) and a new one is rebuilt from the recordings on disk; then
 * every recording left in state `recording` is reconciled with its file.
 */
export async function openStoreWithRecovery(file: string, root: string, log: Logger): Promise<OpenedStore> {
  let db: Db | null = null;
  let quarantined: string | null = null;
  let rebuilt = 0;
  try {
    db = openDatabase(file);
    const check = integrityCheck(db);
    if (check !== 'ok') throw new Error(`integrity check failed: ${check}`);
  } catch (err) {
    try {
      db?.close();
    } catch {
      /* already unusable */
    }
    db = null;
    if (existsSync(file)) {
      quarantined = `${file}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
      renameSync(file, quarantined);
      for (const ext of ['-wal', '-shm']) if (existsSync(file + ext)) renameSync(file + ext, quarantined + ext);
      log.error({ err: (err as Error).message, kept_as: quarantined }, 'database could not be opened: kept aside, rebuilding from the recordings on disk');
    } else throw err;
  }
  if (!db) {
    db = openDatabase(file);
    rebuilt = await rebuildFromDisk(new Store(db), root, log);
  }
  const store = new Store(db);
  const reconciled = await reconcileAll(store, root, log);
  return { store, quarantined, rebuilt, reconciled };
}

/** The database for a one-off command (no recovery: `rigcam serve` does that at start-up). */
export function openStore(file: string): Store {
  return new Store(openDatabase(file));
}

const FILE_RE = /^(.+)_trial(\d{3,})_([A-Za-z0-9][A-Za-z0-9_-]*?)(?:_seg(\d{2,}))?\.ts$/;

async function probeSize(file: string): Promise<{ width: number; height: number }> {
  try {
    const { stdout } = await run('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=width,height', '-of', 'csv=p=0', file]);
    const [w, h] = stdout.trim().split(',').map(Number);
    return { width: w || 0, height: h || 0 };
  } catch {
    return { width: 0, height: 0 };
  }
}

/**
 * Re-register every `<session>/<session>_trial<NNN>_<camera>[_segNN].ts` under the root. Frame timing comes from
 * the CSV sidecar when it agrees with the file (then the recording is whole: `complete`), otherwise from the
 * file's own timestamps anchored on what the CSV has (`interrupted`).
 */
export async function rebuildFromDisk(store: Store, root: string, log: Logger): Promise<number> {
  if (!existsSync(root)) return 0;
  let n = 0;
  for (const dir of readdirSync(root, { withFileTypes: true })) {
    if (!dir.isDirectory()) continue;
    const session = dir.name;
    for (const name of readdirSync(path.join(root, session)).sort()) {
      const m = FILE_RE.exec(name);
      if (!m || m[1] !== session) continue;
      const tsPath = path.join(session, name);
      if (store.recordingByPath(tsPath)) continue;
      const trialNo = Number(m[2]);
      const camera = m[3]!;
      const segment = m[4] ? Number(m[4]) : 0;
      const abs = path.join(root, tsPath);
      const csvRel = tsPath.replace(/\.ts$/, '.csv');
      const frames = await readTsFrames(abs);
      const csvFile = path.join(root, csvRel);
      const csv = existsSync(csvFile) ? parseTimingCsv(readFileSync(csvFile, 'utf8')) : [];
      const csvAgrees = csv.length === frames.length && csv.every((r, i) => r.pts === frames[i]!.ptsRaw);
      const sess = store.openSession(session, {});
      const trial =
        store.trialByNumber(sess.id, trialNo) ??
        store.createTrial({ sessionId: sess.id, number: trialNo, label: csv[0]?.label ?? '', triggerSource: 'unknown', triggerMonoUs: null });
      const size = await probeSize(abs);
      const intervals = csv.map((r) => r.intervalUs).filter((x): x is number => x !== null).sort((a, b) => a - b);
      const median = intervals[Math.floor(intervals.length / 2)];
      const mono0 = csv[0]?.captureUs ?? 0;
      const wall0 = csv[0]?.wallUs ?? statSync(abs).mtimeMs * 1000;
      store.upsertCamera({ id: camera, backend: 'unknown' });
      const id = store.createRecording({
        trialId: trial.id,
        cameraId: camera,
        segment,
        path: tsPath,
        csvPath: csvRel,
        codec: 'h264',
        encoder: 'unknown',
        width: size.width,
        height: size.height,
        fpsNominal: median ? Math.round(1e7 / median) / 10 : 0,
        clock: 'monotonic',
        mono0Us: mono0,
        wall0Us: wall0,
        triggerSource: null,
        triggerMonoUs: null,
      });
      const rec = store.recording(id)!;
      let rows: FrameRow[];
      if (csvAgrees) rows = csv.map((r) => ({ recordingId: id, ...r }));
      else {
        const keep = csv.filter((r, i) => i < frames.length && r.pts === frames[i]!.ptsRaw && r.index === i + 1);
        const known = keep.length ? { index: keep.length, pts: keep[keep.length - 1]!.pts, captureUs: keep[keep.length - 1]!.captureUs } : null;
        rows = [...keep.map((r) => ({ recordingId: id, ...r })), ...rebuildRows(rec, frames, known)];
      }
      store.insertFrames(rows);
      store.finishRecording(id, {
        state: csvAgrees ? 'complete' : 'interrupted',
        frames: frames.length,
        dropped: rows.reduce((s, r) => s + r.missingBefore, 0),
        bytes: statSync(abs).size,
        reason: 'rebuilt from the files on disk after the database was lost',
      });
      if (!csvAgrees) rewriteCsv(store, root, store.recording(id)!);
      n += 1;
    }
  }
  store.closeRebuiltTrials();
  log.warn({ recordings: n }, 'database rebuilt from the recordings on disk');
  return n;
}
