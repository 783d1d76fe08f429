import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { recordingsRoot } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { verifyRecording } from '../recording/verify.ts';
import { recheckChecksums } from '../storage/checksums.ts';
import { openStoreReadonly } from '../storage/open-store.ts';
import type { RecordingRow } from '../storage/store.ts';

export const verifyArgsSchema = z.strictObject({
  target: z.string().min(1, 'RECORDING_ID or FILE is required'),
  data: z.string().min(1, '--data needs a directory').optional(),
});
export type VerifyArgs = z.infer<typeof verifyArgsSchema>;

export interface VerifyOutcome {
  ok: boolean;
  lines: string[];
}

/**
 * `rigcam verify RECORDING_ID|FILE [--data DIR]`: file frames, timing SEI, CSV and database rows agree frame by
 * frame. A FILE the database does not know (copied off the box) is checked against its SEI and its CSV.
 * Only reads: the database is opened read-only.
 */
export async function runVerify(args: VerifyArgs, config: Config): Promise<VerifyOutcome> {
  const dataDir = path.resolve(args.data ?? config.data_dir);
  const root = args.data ? path.join(dataDir, 'recordings') : recordingsRoot(config);
  const dbFile = path.join(dataDir, 'rigcam.db');
  const store = existsSync(dbFile) ? openStoreReadonly(dbFile) : null;
  try {
    let rec: RecordingRow | undefined;
    let videos: string[];
    let csvFile: string | null;
    let label: string;
    const notes: string[] = [];
    if (/^\d+$/.test(args.target)) {
      if (!store) throw new Error(`no database at ${dbFile} (use --data DIR)`);
      rec = store.recording(Number(args.target));
      if (!rec) throw new Error(`no recording ${args.target} in ${dbFile}`);
      const ts = path.resolve(root, rec.path);
      const mp4 = rec.mp4_path ? path.resolve(root, rec.mp4_path) : null;
      // The .ts may be gone after a verified remux with keep_ts: false; then the .mp4 is the recording.
      videos = existsSync(ts) || !mp4 ? [ts] : [];
      if (mp4) videos.push(mp4);
      csvFile = path.resolve(root, rec.csv_path);
      label = `recording ${rec.id} (${rec.path})`;
    } else {
      const file = path.resolve(args.target);
      if (!existsSync(file) || !statSync(file).isFile()) throw new Error(`${args.target}: no such file`);
      const rel = path.relative(root, file);
      if (store && !rel.startsWith('..') && !path.isAbsolute(rel)) rec = store.recordingByFile(rel);
      videos = [file];
      if (rec) csvFile = path.resolve(root, rec.csv_path);
      else {
        const sidecar = file.replace(/\.(ts|mp4)$/i, '.csv');
        csvFile = sidecar !== file && existsSync(sidecar) ? sidecar : null;
        notes.push(`note: ${file} is not in the database${store ? '' : ` (none at ${dbFile})`}: checked the file, its SEI${csvFile ? ' and its CSV' : ''}`);
      }
      label = rec ? `recording ${rec.id} (${rel})` : file;
    }
    if (rec?.state === 'recording') notes.push(`note: recording ${rec.id} is still being written: its newest frames may not have their rows yet`);
    const report = await verifyRecording({ videos, csvFile, recording: rec ?? null, store: rec ? store : null });
    // The SHA-256 stored when the recording closed: any byte changed since (bit rot, an edit, a bad copy back).
    // A recording still being written, or finished but not hashed yet, has none: said, not a failure.
    const sums = rec && store && rec.state !== 'recording' ? await recheckChecksums(store, root, rec) : null;
    const sumProblems = sums && sums.files.length ? sums.problems : [];
    if (sums && !sums.files.length) notes.push(`note: recording ${rec!.id} has no checksums stored yet (hashed after it closes)`);
    const sumNote = sums?.files.length ? `; SHA-256 of ${sums.files.length} file(s) ${sums.ok ? 'match' : 'checked'}` : '';
    if (report.ok && !sumProblems.length) {
      const what = ['file', 'SEI', ...(csvFile ? ['CSV'] : []), ...(rec ? ['database'] : [])];
      return { ok: true, lines: [...notes, `OK ${label}: ${report.frames} frames; ${what.slice(0, -1).join(', ')} and ${what[what.length - 1]} agree${sumNote}`] };
    }
    const more = report.total > report.problems.length ? [`... and ${report.total - report.problems.length} more`] : [];
    const total = report.total + sumProblems.length;
    return { ok: false, lines: [...notes, ...report.problems, ...more, ...sumProblems, `FAILED ${label}: ${total} disagreement(s)`] };
  } finally {
    store?.close();
  }
}
