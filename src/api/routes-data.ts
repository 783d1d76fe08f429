import { stat } from 'node:fs/promises';
import path from 'node:path';
import express, { type Request, type Response, type Router } from 'express';
import type { z } from 'zod';
import { moduleName } from '../timing/csv-format.ts';
import type { RecordingRow, TrialRow } from '../storage/store.ts';
import { requireToken } from './auth.ts';
import { parseRange } from './byte-range.ts';
import type { ApiContext } from './context.ts';
import { sendFileBytes } from './file-send.ts';
import { fileInRoot } from './file-in-root.ts';
import { framesCsvChunks } from './frames-csv.ts';
import { HttpError, parsePart } from './http-error.ts';
import { idParams, noQuery, sessionQuery, syncEdgesQuery, tokenQuery, videoQuery } from './schemas.ts';

/** A stored relative path as the API shows it: only when it stays inside the recordings root. */
function shownPath(root: string, rel: string | null): string | null {
  if (!rel) return null;
  const r = path.relative(root, path.resolve(root, rel));
  return r && !r.startsWith('..') && !path.isAbsolute(r) ? r : null;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return {};
  }
}

export function recordingView(root: string, r: RecordingRow): Record<string, unknown> {
  const base = `/api/recordings/${r.id}`;
  return {
    id: r.id,
    trial_id: r.trial_id,
    camera_id: r.camera_id,
    segment: r.segment,
    path: shownPath(root, r.path),
    csv_path: shownPath(root, r.csv_path),
    mp4_path: shownPath(root, r.mp4_path),
    codec: r.codec,
    encoder: r.encoder,
    width: r.width,
    height: r.height,
    fps_nominal: r.fps_nominal,
    clock: r.clock,
    state: r.state,
    stop_reason: r.stop_reason,
    frame_count: r.frame_count,
    dropped: r.dropped,
    bytes: r.bytes,
    trigger_source: r.trigger_source,
    trigger_mono_us: r.trigger_mono_us,
    trigger_frame_index: r.trigger_frame_index,
    mono0_us: r.mono0_us,
    wall0_us: r.wall0_us,
    started_at: r.started_at,
    stopped_at: r.stopped_at,
    offloaded_at: r.offloaded_at,
    offload_verified_at: r.offload_verified_at ?? null,
    /** A CSI sync camera's rpicam-vid --sync state when the file opened; null: not a sync camera. */
    camera_sync: r.camera_sync ? parseJson(r.camera_sync) : null,
    deleted_at: r.deleted_at ?? null,
    urls: { self: base, video: `${base}/video`, video_ts: `${base}/video?format=ts`, frames_csv: `${base}/frames.csv` },
  };
}

/** Trials with their markers and recordings, read in two queries for the whole page of trials. */
function trialViews(c: ApiContext, trials: readonly TrialRow[]): Record<string, unknown>[] {
  const { markers, recordings } = c.store.trialDetails(trials.map((t) => t.id));
  return trials.map((t) => ({
    ...t,
    metadata: parseJson(t.metadata),
    markers: (markers.get(t.id) ?? []).map((m) => ({ id: m.id, label: m.name, mono_us: m.mono_us, source: m.source })),
    recordings: (recordings.get(t.id) ?? []).map((r) => recordingView(c.root, r)),
  }));
}

/** Path and query are both validated before anything is looked up: a bad query is a 400 even for a missing id. */
function recordingOr404<Q extends z.ZodType>(c: ApiContext, req: Request, query: Q): { rec: RecordingRow; q: z.infer<Q> } {
  const { id } = parsePart('params', idParams, req.params);
  const q = parsePart('query', query, req.query);
  const r = c.store.recording(id);
  if (!r) throw new HttpError(404, `no recording ${id}`, 'params.id');
  return { rec: r, q };
}

function downloadName(file: string): string {
  return path.basename(file).replace(/[^A-Za-z0-9._-]/g, '_');
}

/** Write chunks with backpressure; stop quietly when the client goes away. */
async function writeChunks(res: Response, chunks: Iterable<string>): Promise<void> {
  for (const chunk of chunks) {
    if (res.destroyed) return;
    if (!res.write(chunk))
      await new Promise<void>((resolve) => {
        const done = (): void => {
          res.off('drain', done);
          res.off('close', done);
          resolve();
        };
        res.on('drain', done);
        res.on('close', done);
      });
  }
  res.end();
}

export function dataRoutes(c: ApiContext): Router {
  const r = express.Router();
  const auth = requireToken(c.config.http.token);
  // Download links cannot carry headers: these also take ?token=.
  const authLink = requireToken(c.config.http.token, true);

  r.get('/sessions', auth, (req, res) => {
    parsePart('query', noQuery, req.query);
    res.json({ sessions: c.store.listSessions().map((s) => ({ ...s, metadata: parseJson(s.metadata) })) });
  });

  r.get('/sessions/:id', auth, async (req, res) => {
    const { id } = parsePart('params', idParams, req.params);
    const q = parsePart('query', sessionQuery, req.query);
    const s = c.store.session(id);
    if (!s) throw new HttpError(404, `no session ${id}`, 'params.id');
    // Paged, and written a few trials at a time with a turn of the event loop between them: a page of trials with
    // thousands of markers never holds the loop (a recording's frames and the watchdog wait behind it).
    const limit = q.limit ?? 50;
    const { trials, total } = c.store.trialsPage(s.id, q.after_trial ?? 0, limit);
    const last = trials.at(-1)?.number;
    const next = trials.length === limit && last !== undefined ? last : null;
    res.type('application/json');
    res.write(`{"session":${JSON.stringify({ ...s, metadata: parseJson(s.metadata) })},"trials_total":${total},"next_after_trial":${JSON.stringify(next)},"trials":[`);
    for (let i = 0; i < trials.length; i += 5) {
      if (res.destroyed) return;
      const chunk = trialViews(c, trials.slice(i, i + 5)).map((t) => JSON.stringify(t)).join(',');
      res.write((i ? ',' : '') + chunk);
      await new Promise((r) => setImmediate(r));
    }
    res.end(']}');
  });

  // Read-only: every sync edge in and out (issue 18), a page at a time after an edge id.
  r.get('/sync/edges', auth, (req, res) => {
    const q = parsePart('query', syncEdgesQuery, req.query);
    const limit = q.limit ?? 1000;
    const edges = c.store.syncEdgesPage(q.since ?? 0, limit, { direction: q.direction, line: q.line });
    const last = edges.at(-1)?.id;
    res.json({
      edges: edges.map((e) => ({ ...e, active: e.active === 1 })),
      next_since: edges.length === limit && last !== undefined ? last : null,
    });
  });

  r.get('/recordings/:id', auth, (req, res) => {
    const { rec } = recordingOr404(c, req, noQuery);
    const trial = rec.trial_id !== null ? c.store.trial(rec.trial_id) : undefined;
    const session = trial ? c.store.session(trial.session_id) : undefined;
    res.json({
      recording: recordingView(c.root, rec),
      trial: trial ? { ...trial, metadata: parseJson(trial.metadata) } : null,
      session: session ? { ...session, metadata: parseJson(session.metadata) } : null,
    });
  });

  r.get('/recordings/:id/video', authLink, async (req, res) => {
    const { rec, q } = recordingOr404(c, req, videoQuery);
    if (q.format === 'mp4' && !rec.mp4_path) throw new HttpError(404, `recording ${rec.id} has no .mp4 (remux_mp4 off, still recording, or failed)`, 'query.format');
    const rel = q.format === 'ts' || !rec.mp4_path ? rec.path : rec.mp4_path;
    const file = fileInRoot(c.root, rel);
    const st = await stat(file);
    if (!st.isFile()) throw new HttpError(404, 'the recording is not a regular file');
    const range = parseRange(req.get('range'), st.size);
    if (range.kind === 'unsatisfiable') throw new HttpError(416, `range: ${range.reason}`, 'range', { 'content-range': `bytes */${st.size}`, 'accept-ranges': 'bytes' });
    res.setHeader('accept-ranges', 'bytes');
    res.setHeader('content-type', file.endsWith('.mp4') ? 'video/mp4' : 'video/mp2t');
    res.setHeader('content-disposition', `attachment; filename="${downloadName(file)}"`);
    res.setHeader('cache-control', 'no-store');
    const [start, end] = range.kind === 'partial' ? [range.start, range.end] : [0, st.size - 1];
    if (range.kind === 'partial') {
      res.status(206);
      res.setHeader('content-range', `bytes ${start}-${end}/${st.size}`);
    }
    res.setHeader('content-length', String(Math.max(0, end - start + 1)));
    if (req.method === 'HEAD' || st.size === 0) {
      res.end();
      return;
    }
    if (!(await sendFileBytes(res, file, start, end - start + 1)).gone) res.end();
  });

  r.get('/recordings/:id/frames.csv', authLink, async (req, res) => {
    const { rec } = recordingOr404(c, req, tokenQuery);
    const trial = rec.trial_id !== null ? c.store.trial(rec.trial_id) : undefined;
    const backend = c.store.cameraRow(rec.camera_id)?.backend ?? c.box.cameras.get(rec.camera_id)?.config.source ?? 'test';
    const ctx = {
      trial: trial?.number ?? 0,
      module: moduleName(backend === 'v4l2' || backend === 'rpicam' ? backend : 'test'),
      deviceId: rec.camera_id,
      label: trial?.label ?? '',
    };
    const markers = rec.trial_id !== null ? c.store.markersOfTrial(rec.trial_id) : [];
    res.setHeader('content-type', 'text/csv; charset=utf-8');
    res.setHeader('content-disposition', `attachment; filename="${downloadName(rec.path).replace(/\.(ts|mp4)$/, '')}_frames.csv"`);
    res.setHeader('cache-control', 'no-store');
    await writeChunks(res, framesCsvChunks(c.store, rec.id, ctx, markers));
  });

  return r;
}
