import { readSidecar } from './sidecar.ts';
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
 * The session document: the session, its trials (labels, metadata, markers) and per recording its sidecar's summary
 * and the SHA-256 of its files (paths relative to the recordings root, which is also how a session's tar names
 * them), so a session folder copied off the box says everything the database knew about it.
 * Produced as JSON text a few trials at a time: a session of hundreds of trials and tens of thousands of markers is
 * written with turns of the event loop between the parts (callers yield between them), never in one block.
 */
export function* sessionDocumentParts(store: Store, root: string, s: SessionRow, trialsPerPart = 5): Generator<string> {
  const head = {
    format: 'rigcam-session/1',
    written_at: new Date().toISOString(),
    session: { id: s.id, name: s.name, metadata: parseJson(s.metadata), started_at: s.started_at, stopped_at: s.stopped_at },
  };
  yield JSON.stringify(head, null, 2).replace(/\n}$/, ',\n  "trials": [');
  let after = 0;
  let first = true;
  for (;;) {
    const { trials } = store.trialsPage(s.id, after, trialsPerPart);
    if (!trials.length) break;
    after = trials.at(-1)!.number;
    const { markers, recordings } = store.trialDetails(trials.map((t) => t.id));
    const sums = store.checksumsOfMany([...recordings.values()].flat().map((r) => r.id));
    const views = trials.map((t) => ({
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
        const sc = video ? readSidecar(video) : null;
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
    }));
    yield views.map((v) => (first ? '\n' : ',\n') + (first = false, JSON.stringify(v))).join('');
    if (trials.length < trialsPerPart) break;
  }
  yield '\n  ]\n}\n';
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
