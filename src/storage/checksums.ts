import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { sidecarPathFor } from './sidecar.ts';
import type { ChecksumKind, ChecksumRow, RecordingRow, Store } from './store.ts';

/**
 * SHA-256 of a recording's files, computed at the source (when the recording closes, when its .mp4 is made, when
 * it is adopted or rebuilt) and rechecked on the box or against a copy. Hashing is streamed in small reads, so
 * each turn of the event loop spends well under a few milliseconds on it and frames keep flowing.
 */

/** Read size of a hash: 256 KiB is about 1 ms of SHA-256 on a Pi 4 core, so the event loop is never held long. */
const CHUNK = 256 * 1024;

/**
 * The file's SHA-256 (hex) and size, read in CHUNK steps into one buffer sized to the file. A read stream would
 * allocate a fresh CHUNK buffer per read (and one more for the end), each freed only when the collector gets to it:
 * a long recording's hash piled up as many MiB as the file had, a short recording's three files 1.5 MiB (issue 17).
 */
export async function sha256File(file: string, signal?: AbortSignal): Promise<{ sha256: string; bytes: number }> {
  signal?.throwIfAborted();
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(Math.max(1, Math.min(CHUNK, (await fh.stat()).size)));
    const h = createHash('sha256');
    let bytes = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      signal?.throwIfAborted();
      if (bytesRead === 0) break;
      h.update(buf.subarray(0, bytesRead)); // hashed before the next read reuses the buffer
      bytes += bytesRead;
    }
    return { sha256: h.digest('hex'), bytes };
  } finally {
    await fh.close();
  }
}

/** The files of a recording that are hashed, by kind, relative to the recordings root (as the database stores them). */
export function recordingFiles(rec: Pick<RecordingRow, 'path' | 'csv_path' | 'mp4_path'>): Array<{ kind: ChecksumKind; path: string }> {
  const out: Array<{ kind: ChecksumKind; path: string }> = [];
  // After a remux with keep_ts: false the recording's path is its .mp4 and there is no .ts any more.
  if (rec.path.endsWith('.ts')) out.push({ kind: 'video', path: rec.path });
  out.push({ kind: 'csv', path: rec.csv_path });
  out.push({ kind: 'sidecar', path: sidecarPathFor(rec.path) });
  if (rec.mp4_path) out.push({ kind: 'mp4', path: rec.mp4_path });
  return out;
}

/** A stored relative path as a file under the root, or null when it would leave it (whatever the database says). */
export function underRoot(root: string, rel: string): string | null {
  const abs = path.resolve(root, rel);
  const r = path.relative(root, abs);
  return r && !r.startsWith('..') && !path.isAbsolute(r) ? abs : null;
}

export interface ChecksumSync {
  files: ChecksumRow[];
  /** Files that should be there and are not (kind: reason). */
  missing: string[];
}

/**
 * Bring a finished recording's checksums up to date: hash each of its files that has no checksum for its current
 * path, and forget the checksums of files it no longer has (a .ts removed after a verified remux). Files already
 * hashed are not read again: a checksum is the file as it was when it was final.
 */
export async function syncChecksums(store: Store, root: string, recordingId: number, signal?: AbortSignal): Promise<ChecksumSync> {
  const rec = store.recording(recordingId);
  if (!rec || rec.state === 'recording' || rec.deleted_at) return { files: rec ? store.checksumsOf(recordingId) : [], missing: [] };
  const want = recordingFiles(rec);
  const have = new Map(store.checksumsOf(rec.id).map((c) => [c.kind, c]));
  const missing: string[] = [];
  for (const [kind] of have) if (!want.some((w) => w.kind === kind)) store.dropChecksum(rec.id, kind);
  for (const w of want) {
    if (have.get(w.kind)?.path === w.path) continue;
    const abs = underRoot(root, w.path);
    if (!abs) {
      missing.push(`${w.kind}: ${w.path} is outside the recordings root`);
      continue;
    }
    try {
      const { sha256, bytes } = await sha256File(abs, signal);
      if (signal?.aborted) break;
      store.setChecksum({ recording_id: rec.id, kind: w.kind, path: w.path, bytes, sha256 });
    } catch (err) {
      if (signal?.aborted) break;
      missing.push(`${w.kind}: ${w.path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  return { files: store.checksumsOf(rec.id), missing };
}

/** The recordings of `page` that lack a checksum of one of their files (needsChecksums, one query for the page). */
export function lackingChecksums(store: Store, page: readonly RecordingRow[]): Set<number> {
  const stored = store.checksumsOfMany(page.map((r) => r.id));
  return new Set(page.filter((r) => needsChecksums(store, r, stored.get(r.id) ?? [])).map((r) => r.id));
}

export interface ChecksumCheck {
  ok: boolean;
  files: Array<ChecksumRow & { actual: string | null; actual_bytes: number | null; ok: boolean; error: string | null }>;
  problems: string[];
}

/**
 * Whether a finished recording lacks the checksum of one of its files (adopted, rebuilt, or closed by a crash).
 * `stored`: its checksum rows when the caller already read them (Store.checksumsOfMany), else they are read here.
 */
export function needsChecksums(store: Store, rec: RecordingRow, stored?: readonly ChecksumRow[]): boolean {
  const have = new Map((stored ?? store.checksumsOf(rec.id)).map((c) => [c.kind, c.path]));
  const want = recordingFiles(rec);
  return want.length !== have.size || want.some((w) => have.get(w.kind) !== w.path);
}

/** Recompute every stored checksum of a recording from its files on the box and compare. */
export async function recheckChecksums(store: Store, root: string, rec: RecordingRow): Promise<ChecksumCheck> {
  const stored = store.checksumsOf(rec.id);
  const files: ChecksumCheck['files'] = [];
  const problems: string[] = [];
  if (!stored.length) problems.push(`checksums: recording ${rec.id} has none stored yet (still recording, or not hashed yet)`);
  for (const c of stored) {
    const abs = underRoot(root, c.path);
    let actual: string | null = null;
    let actualBytes: number | null = null;
    let error: string | null = null;
    if (!abs) error = 'outside the recordings root';
    else {
      try {
        ({ sha256: actual, bytes: actualBytes } = await sha256File(abs));
      } catch (err) {
        error = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      }
    }
    const ok = actual === c.sha256 && actualBytes === c.bytes;
    if (!ok) problems.push(`checksum: ${c.kind} ${c.path}: ${error ?? `stored sha256 ${c.sha256} (${c.bytes} bytes), file has ${actual} (${actualBytes} bytes)`}`);
    files.push({ ...c, actual, actual_bytes: actualBytes, ok, error });
  }
  return { ok: problems.length === 0, files, problems };
}
