import { readdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import express, { type Router } from 'express';
import { z } from 'zod';
import { confirmOffload } from '../offload/confirm.ts';
import { needsChecksums, recheckChecksums, recordingFiles } from '../storage/checksums.ts';
import { SESSION_DOC, sessionDocumentText } from '../storage/session-export.ts';
import type { ChecksumRow, RecordingRow, SessionRow, TrialRow } from '../storage/store.ts';
import { requireJson, requireToken } from './auth.ts';
import type { ApiContext } from './context.ts';
import { HttpError, parsePart } from './http-error.ts';
import { idParams, tokenQuery } from './schemas.ts';
import { writeTar, type TarEntry } from './tar.ts';

export const manifestQuery = z.strictObject({
  format: z.enum(['json', 'tsv']).optional().describe('json (default), or tsv: one line per file, "recording_id<TAB>kind<TAB>bytes<TAB>sha256<TAB>path", after a "# recordings_root=<dir>" line'),
  token: z.string().max(512).optional(),
});
export const checksumsQuery = z.strictObject({
  recheck: z.enum(['true', 'false', '1', '0']).optional().describe('true: hash the files on the box again and compare with the stored checksums'),
});
const sha256Hex = z.string().regex(/^[0-9a-fA-F]{64}$/, 'a SHA-256 in hex (64 characters)');
export const offloadedBody = z.strictObject({
  sha256: z
    .record(z.string().min(1).max(300), sha256Hex)
    .describe('the SHA-256 of each file of the recording as the puller computed it over ITS copy, by path as the manifest names it (relative to the recordings root)'),
});

/**
 * The offload manifest's entries: each recording not yet offloaded with its files, sizes and SHA-256 (null while not
 * hashed yet). The checksums in one query for all, trials and sessions read once each (hundreds may wait).
 */
function manifestEntries(c: ApiContext): Array<Record<string, unknown>> {
  const pending = c.store.offloadPending();
  const stored = c.store.checksumsOfMany(pending.map((r) => r.id));
  const trials = new Map<number, TrialRow | undefined>();
  const sessions = new Map<number, SessionRow | undefined>();
  const trialOf = (id: number): TrialRow | undefined => (trials.has(id) ? trials.get(id) : trials.set(id, c.store.trial(id)).get(id));
  const sessionOf = (id: number): SessionRow | undefined => (sessions.has(id) ? sessions.get(id) : sessions.set(id, c.store.session(id)).get(id));
  return pending.map((r) => manifestEntry(r, stored.get(r.id) ?? [], c.store, trialOf, sessionOf));
}

function manifestEntry(
  r: RecordingRow,
  rows: ChecksumRow[],
  store: ApiContext['store'],
  trialOf: (id: number) => TrialRow | undefined,
  sessionOf: (id: number) => SessionRow | undefined,
): Record<string, unknown> {
  const sums = new Map(rows.map((s) => [s.kind, s]));
  const trial = r.trial_id !== null ? trialOf(r.trial_id) : undefined;
  const session = trial ? sessionOf(trial.session_id) : undefined;
  return {
    id: r.id,
    session: session?.name ?? null,
    trial: trial?.number ?? null,
    camera_id: r.camera_id,
    state: r.state,
    ready: !needsChecksums(store, r, rows),
    files: recordingFiles(r).map((f) => {
      const s = sums.get(f.kind);
      return { kind: f.kind, path: f.path, bytes: s && s.path === f.path ? s.bytes : null, sha256: s && s.path === f.path ? s.sha256 : null };
    }),
  };
}

/**
 * Pull offload (a server fetches from the box, e.g. scripts/pull-fleet.sh) and session export:
 * - GET  /offload/manifest: finished recordings not yet offloaded, their files with sizes and SHA-256;
 * - POST /recordings/:id/offloaded {sha256: {path: hex}}: marks the recording offloaded (and verified) only when the
 *   copy's hash of EVERY file of the recording matches the one stored at the source; else 409 and nothing changes;
 * - GET  /recordings/:id/checksums[?recheck=true]: the stored checksums, optionally rechecked against the files;
 * - GET  /sessions/:id/export: a tar of the session folder with a fresh session.json.
 */
export function offloadRoutes(c: ApiContext): Router {
  const r = express.Router();
  const auth = requireToken(c.config.http.token);
  const authLink = requireToken(c.config.http.token, true);

  r.get('/offload/manifest', authLink, (req, res) => {
    const q = parsePart('query', manifestQuery, req.query);
    const entries = manifestEntries(c);
    res.setHeader('cache-control', 'no-store');
    if (q.format === 'tsv') {
      res.type('text/tab-separated-values; charset=utf-8');
      const lines = [`# recordings_root=${c.root}`];
      for (const e of entries) {
        if (!e.ready) continue; // not hashed yet: offered once it is
        for (const f of e.files as Array<{ kind: string; path: string; bytes: number; sha256: string }>) lines.push([e.id, f.kind, f.bytes, f.sha256, f.path].join('\t'));
      }
      res.send(lines.join('\n') + '\n');
      return;
    }
    const ready = entries.filter((e) => e.ready);
    const bytes = ready.reduce((n, e) => n + (e.files as Array<{ bytes: number }>).reduce((m, f) => m + f.bytes, 0), 0);
    res.json({ recordings_root: c.root, recordings: entries, ready: ready.length, pending_checksums: entries.length - ready.length, bytes_ready: bytes });
  });

  r.post('/recordings/:id/offloaded', auth, requireJson, express.json({ limit: '64kb', strict: true }), async (req, res) => {
    const { id } = parsePart('params', idParams, req.params);
    const body = parsePart('body', offloadedBody, req.body ?? {});
    const out = await confirmOffload(c.store, id, body.sha256);
    // Pull and push report to the same offload state (last success, last error, stale warning).
    if (out.ok || out.mismatches) c.box.offloadOutcome(id, out.ok ? null : out.error);
    if (out.ok) {
      res.json({ ok: true, recording_id: id, offloaded_at: out.offloaded_at, offload_verified_at: out.offload_verified_at, files: out.files });
      return;
    }
    if (out.mismatches) {
      res.status(409).json({ ok: false, error: out.error, recording_id: id, mismatches: out.mismatches });
      return;
    }
    throw new HttpError(out.status, out.error, out.field);
  });

  r.get('/recordings/:id/checksums', auth, async (req, res) => {
    const { id } = parsePart('params', idParams, req.params);
    const q = parsePart('query', checksumsQuery, req.query);
    const rec = c.store.recording(id);
    if (!rec) throw new HttpError(404, `no recording ${id}`, 'params.id');
    if (q.recheck === 'true' || q.recheck === '1') {
      const check = await recheckChecksums(c.store, c.root, rec);
      res.json({ recording_id: id, rechecked: true, ok: check.ok, problems: check.problems, files: check.files });
      return;
    }
    res.json({ recording_id: id, rechecked: false, files: c.store.checksumsOf(id) });
  });

  r.get('/sessions/:id/export', authLink, async (req, res) => {
    const { id } = parsePart('params', idParams, req.params);
    parsePart('query', tokenQuery, req.query);
    const s = c.store.session(id);
    if (!s) throw new HttpError(404, `no session ${id}`, 'params.id');
    const dir = path.resolve(c.root, s.name);
    const rel = path.relative(c.root, dir);
    if (!rel || rel.startsWith('..') || path.isAbsolute(rel) || rel.includes(path.sep)) throw new HttpError(404, 'the session has no folder under the recordings root');
    // A session folder that is a symlink leading outside the root is not followed.
    const [realDir, realRoot] = await Promise.all([realpath(dir).catch(() => null), realpath(c.root).catch(() => null)]);
    if (!realDir || !realRoot || path.relative(realRoot, realDir) !== s.name) throw new HttpError(404, 'the session has no folder under the recordings root');
    // Files of recordings still being written are left out: a copy of a growing file would be torn.
    const writing = new Set<string>();
    for (const t of c.store.trialsOfSession(s.id)) for (const rr of c.store.recordingsOfTrial(t.id)) if (rr.state === 'recording') for (const f of recordingFiles(rr)) writing.add(f.path);
    const doc = Buffer.from(await sessionDocumentText(c.store, c.root, s), 'utf8');
    const names = await readdir(dir, { withFileTypes: true }).catch(() => []);
    async function* entries(): AsyncGenerator<TarEntry> {
      yield { name: `${s!.name}/${SESSION_DOC}`, mtimeS: Date.now() / 1000, data: doc };
      for (const d of names.sort((a, b) => a.name.localeCompare(b.name))) {
        // Regular files only (no symlink is followed), not the stored session.json (the fresh one is above), no temporaries.
        if (!d.isFile() || d.name === SESSION_DOC || /\.tmp-\d+$|\.partial$/.test(d.name)) continue;
        const relFile = path.join(s!.name, d.name);
        if (writing.has(relFile)) continue;
        const st = await stat(path.join(dir, d.name)).catch(() => null);
        if (!st?.isFile()) continue;
        yield { name: relFile, mtimeS: st.mtimeMs / 1000, file: path.join(dir, d.name), size: st.size };
      }
    }
    res.setHeader('content-type', 'application/x-tar');
    res.setHeader('content-disposition', `attachment; filename="${s.name}.tar"`);
    res.setHeader('cache-control', 'no-store');
    await writeTar(res, entries());
  });

  return r;
}
