import { statSync } from 'node:fs';
import { readSidecar, sidecarPathFor, type Sidecar } from './sidecar.ts';
import { underRoot } from './checksums.ts';
import type { SessionRow, Store } from './store.ts';

/** Name of the session document inside each session's folder (`<root>/<session>/session.json`). */
export const SESSION_DOC = 'session.json';

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return {};
  }
}

/**
 * What a rewrite of a session's document keeps of the last one (the runtime's extension holds one per session): per
 * trial its rendered JSON, the counter it was rendered at (Store.trialDocVersions) and the identity of each of its
 * recordings' sidecar files when read. A trial is rendered again when its counter moved or a sidecar changed (other
 * inode, size, mtime or ctime: sidecars are replaced by rename), so an unchanged trial costs an indexed row and a
 * stat per recording instead of its rows, sidecars and JSON.
 */
export type SessionDocCache = Map<number, CachedTrial>;

interface CachedTrial {
  version: number;
  sidecars: Array<{ file: string; stamp: SidecarStamp }>;
  text: string;
  /** The rewrite that last saw this trial: trials gone from the session are dropped after a rewrite. */
  pass: number;
}

type SidecarStamp = readonly [ino: number, size: number, mtimeMs: number, ctimeMs: number] | null;

function stampOf(file: string): SidecarStamp {
  const st = statSync(file, { throwIfNoEntry: false });
  return st ? [st.ino, st.size, st.mtimeMs, st.ctimeMs] : null;
}

const sameStamp = (a: SidecarStamp, b: SidecarStamp): boolean => a === b || (a !== null && b !== null && a.every((v, i) => v === b[i]));

/** Trials per version query. */
const PAGE = 100;
let passes = 0;

/**
 * The session document: the session, its trials (labels, metadata, markers) and per recording its sidecar's summary
 * and the SHA-256 of its files (paths relative to the recordings root, which is also how a session's tar names
 * them), so a session folder copied off the box says everything the database knew about it.
 * Produced as JSON text a few trials at a time: a session of hundreds of trials and tens of thousands of markers is
 * written with turns of the event loop between the parts (callers yield between them), never in one block; at most
 * `trialsPerPart` trials are rendered per part (trials reused from `cache` cost next to nothing).
 */
export function* sessionDocumentParts(store: Store, root: string, s: SessionRow, trialsPerPart = 5, cache: SessionDocCache = new Map()): Generator<string> {
  const pass = ++passes;
  const head = {
    format: 'rigcam-session/1',
    written_at: new Date().toISOString(),
    session: { id: s.id, name: s.name, metadata: parseJson(s.metadata), started_at: s.started_at, stopped_at: s.stopped_at },
  };
  yield JSON.stringify(head, null, 2).replace(/\n}$/, ',\n  "trials": [');
  let after = 0;
  let first = true;
  const sep = (): string => (first ? ((first = false), '\n') : ',\n');
  for (;;) {
    const page = store.trialDocVersions(s.id, after, PAGE);
    if (!page.length) break;
    after = page.at(-1)!.number;
    // Stamped before anything is read: a change racing the rewrite leaves an older stamp, so the next one renders again.
    const fresh = page.map((t) => {
      const c = cache.get(t.id);
      return c !== undefined && c.version === t.version && c.sidecars.every((f) => sameStamp(f.stamp, stampOf(f.file)));
    });
    for (let i = 0; i < page.length; ) {
      let out = '';
      for (; i < page.length && fresh[i]; i++) {
        const c = cache.get(page[i]!.id)!;
        c.pass = pass;
        out += sep() + c.text;
      }
      const stale: Array<{ id: number; version: number }> = [];
      for (; i < page.length && !fresh[i] && stale.length < trialsPerPart; i++) stale.push(page[i]!);
      for (const t of renderTrials(store, root, stale)) {
        cache.set(t.id, { ...t, pass });
        out += sep() + t.text;
      }
      yield out;
    }
    if (page.length < PAGE) break;
  }
  for (const [id, c] of cache) if (c.pass !== pass) cache.delete(id);
  yield '\n  ]\n}\n';
}

/** Trials as the document shows them, each one line of JSON, with what its rendering depended on. */
function renderTrials(store: Store, root: string, list: ReadonlyArray<{ id: number; version: number }>): Array<Omit<CachedTrial, 'pass'> & { id: number }> {
  if (!list.length) return [];
  const { markers, recordings } = store.trialDetails(list.map((t) => t.id));
  const sums = store.checksumsOfMany([...recordings.values()].flat().map((r) => r.id));
  const out: Array<Omit<CachedTrial, 'pass'> & { id: number }> = [];
  for (const { id, version } of list) {
    const t = store.trial(id);
    if (!t) continue; // deleted since the page was read
    const sidecars: CachedTrial['sidecars'] = [];
    const view = {
      number: t.number,
      label: t.label,
      state: t.state,
      metadata: parseJson(t.metadata),
      trigger_source: t.trigger_source,
      trigger_mono_us: t.trigger_mono_us,
      trigger_clock: t.trigger_clock,
      mono0_us: t.mono0_us,
      wall0_us: t.wall0_us,
      time_sync: t.time_sync === null ? null : parseJson(t.time_sync),
      started_at: t.started_at,
      stopped_at: t.stopped_at,
      markers: (markers.get(t.id) ?? []).map((m) => ({ label: m.name, mono_us: m.mono_us, source: m.source })),
      recordings: (recordings.get(t.id) ?? []).map((r) => {
        const video = underRoot(root, r.path);
        let sc: Sidecar | null = null;
        if (video) {
          const file = sidecarPathFor(video);
          sidecars.push({ file, stamp: stampOf(file) });
          sc = readSidecar(video);
        }
        return {
          id: r.id,
          camera_id: r.camera_id,
          segment: r.segment,
          state: r.state,
          stop_reason: r.stop_reason,
          frames: r.frame_count,
          dropped: r.dropped,
          bytes: r.bytes,
          path: r.path,
          csv_path: r.csv_path,
          mp4_path: r.mp4_path,
          clock_source: r.clock_source,
          trigger_frame_index: r.trigger_frame_index,
          offloaded_at: r.offloaded_at,
          offload_verified_at: r.offload_verified_at,
          deleted_at: r.deleted_at,
          sidecar: sc ? { recording: sc.recording, camera: sc.camera, state: sc.state, frames: sc.frames, dropped: sc.dropped, stop_reason: sc.stop_reason, stopped_at: sc.stopped_at } : null,
          checksums: (sums.get(r.id) ?? []).map((c) => ({ kind: c.kind, path: c.path, bytes: c.bytes, sha256: c.sha256 })),
        };
      }),
    };
    out.push({ id, version, sidecars, text: JSON.stringify(view) });
  }
  return out;
}

/** The whole document as text, built part by part with a turn of the event loop between parts. */
export async function sessionDocumentText(store: Store, root: string, s: SessionRow): Promise<string> {
  const parts: string[] = [];
  for (const p of sessionDocumentParts(store, root, s)) {
    parts.push(p);
    await new Promise((r) => setImmediate(r));
  }
  return parts.join('');
}
