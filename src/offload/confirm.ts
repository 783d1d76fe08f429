import { needsChecksums } from '../storage/checksums.ts';
import type { Store } from '../storage/store.ts';

export type ConfirmResult =
  | { ok: true; files: number; offloaded_at: string | null; offload_verified_at: string | null }
  | { ok: false; status: 400 | 404 | 409; error: string; field?: string; mismatches?: string[] };

/**
 * The one way a recording becomes verified-offloaded, whichever direction copied it (POST
 * /api/recordings/:id/offloaded for a pull, the push extension for a push): only when the copy's SHA-256 of EVERY
 * file of the recording, by path relative to the recordings root, equals the one stored at the source. Resolves once
 * the mark is on disk.
 */
export async function confirmOffload(store: Store, id: number, copy: Readonly<Record<string, string>>): Promise<ConfirmResult> {
  const rec = store.recording(id);
  if (!rec) return { ok: false, status: 404, error: `no recording ${id}`, field: 'params.id' };
  if (rec.state === 'recording') return { ok: false, status: 409, error: `recording ${id} is still being written` };
  if (rec.deleted_at) return { ok: false, status: 409, error: `recording ${id} was deleted from the box at ${rec.deleted_at}` };
  const stored = store.checksumsOf(id);
  if (!stored.length || needsChecksums(store, rec)) return { ok: false, status: 409, error: `recording ${id} has not been hashed yet: fetch the manifest again later` };
  const known = new Set(stored.map((s) => s.path));
  for (const p of Object.keys(copy))
    if (!known.has(p)) return { ok: false, status: 400, error: `body.sha256: "${p.slice(0, 200)}" is not a file of recording ${id}`, field: `body.sha256.${p.slice(0, 200)}` };
  const problems: string[] = [];
  for (const s of stored) {
    const got = copy[s.path]?.toLowerCase();
    if (got === undefined) problems.push(`${s.path}: not confirmed`);
    else if (got !== s.sha256) problems.push(`${s.path}: copy has ${got}, the box has ${s.sha256}`);
  }
  if (problems.length) return { ok: false, status: 409, error: `recording ${id} not marked offloaded: ${problems.join('; ')}`, mismatches: problems };
  if (!(await store.markOffloadVerified(id))) return { ok: false, status: 409, error: `recording ${id} cannot be marked (still recording or deleted)` };
  const after = store.recording(id)!;
  return { ok: true, files: stored.length, offloaded_at: after.offloaded_at, offload_verified_at: after.offload_verified_at };
}
