import { createRequire } from 'node:module';
import path from 'node:path';
import express, { type Router } from 'express';
import { z } from 'zod';
import { requireToken } from './auth.ts';
import type { ApiContext } from './context.ts';
import { HttpError, parsePart } from './http-error.ts';
import { recordingSeries, recordingSummary, sessionQualityPage } from './quality.ts';
import { idParams, noQuery, sessionQuery } from './schemas.ts';

const captureUs = z.string().regex(/^-?[0-9]{1,16}$/, 'must be an integer (µs on the capture clock)').transform(Number);

/** `width`: pixels of the plot (one bucket each); `from_us`/`to_us`: a zoomed span on the capture clock, both or neither. */
export const seriesQuery = z
  .strictObject({
    width: z.string().regex(/^[0-9]{1,5}$/, 'must be an integer').transform(Number).pipe(z.number().int().min(10).max(10_000)).optional()
      .describe('number of buckets, usually the plot width in pixels (10-10000, default 1000)'),
    from_us: captureUs.optional().describe('start of the span, capture-clock µs (with to_us)'),
    to_us: captureUs.optional().describe('end of the span, capture-clock µs (with from_us)'),
  })
  .refine((q) => (q.from_us === undefined) === (q.to_us === undefined), { message: 'from_us and to_us go together', path: ['to_us'] })
  .refine((q) => q.from_us === undefined || q.to_us! > q.from_us, { message: 'to_us must be after from_us', path: ['to_us'] });

/** Issue 19: the recording and session quality views (decimated series, summary, per-trial rows). */
export function qualityRoutes(c: ApiContext): Router {
  const r = express.Router();
  const auth = requireToken(c.config.http.token);

  const recordingOr404 = (params: unknown) => {
    const { id } = parsePart('params', idParams, params);
    const rec = c.store.recording(id);
    if (!rec) throw new HttpError(404, `no recording ${id}`, 'params.id');
    return rec;
  };

  r.get('/recordings/:id/series', auth, (req, res) => {
    parsePart('params', idParams, req.params);
    const q = parsePart('query', seriesQuery, req.query);
    const rec = recordingOr404(req.params);
    res.setHeader('cache-control', 'no-store');
    res.json(recordingSeries(c.store, rec, { width: q.width ?? 1000, fromUs: q.from_us, toUs: q.to_us }));
  });

  r.get('/recordings/:id/summary', auth, async (req, res) => {
    parsePart('params', idParams, req.params);
    parsePart('query', noQuery, req.query);
    const rec = recordingOr404(req.params);
    res.setHeader('cache-control', 'no-store');
    res.json(await recordingSummary(c.store, c.root, rec));
  });

  r.get('/sessions/:id/quality', auth, async (req, res) => {
    const { id } = parsePart('params', idParams, req.params);
    const q = parsePart('query', sessionQuery, req.query);
    const s = c.store.session(id);
    if (!s) throw new HttpError(404, `no session ${id}`, 'params.id');
    // Paged like GET /api/sessions/:id (after_trial, limit; default 50) and written a few trials at a time with a
    // turn of the event loop between them, so a long session never holds the loop.
    const limit = q.limit ?? 50;
    const first = q.after_trial ?? 0;
    const { total } = c.store.trialsPage(s.id, first, 0);
    res.setHeader('cache-control', 'no-store');
    res.type('application/json');
    res.write(`{"session":${JSON.stringify({ id: s.id, name: s.name })},"trials_total":${total},"trials":[`);
    let after = first;
    let written = 0;
    let next: number | null = null;
    while (written < limit) {
      if (res.destroyed) return;
      const page = sessionQualityPage(c.store, s.id, after, Math.min(5, limit - written));
      if (!page.rows.length) break;
      res.write((written ? ',' : '') + page.rows.map((r) => JSON.stringify(r)).join(','));
      written += page.rows.length;
      after = page.rows.at(-1)!.number as number;
      if (page.next === null) break;
      if (written === limit) next = after;
      await new Promise((r) => setImmediate(r));
    }
    res.end(`],"next_after_trial":${JSON.stringify(next)}}`);
  });

  return r;
}

/** The plotting library's two files, served by the box itself from the installed package: the box is often offline. */
const UPLOT_FILES: Record<string, string> = { 'uPlot.iife.min.js': 'application/javascript; charset=utf-8', 'uPlot.min.css': 'text/css; charset=utf-8' };

export function vendorRoutes(): Router {
  const r = express.Router();
  const dist = path.dirname(createRequire(import.meta.url).resolve('uplot')); // node_modules/uplot/dist
  r.get('/uplot/:file', (req, res, next) => {
    const file = req.params.file;
    const type = UPLOT_FILES[file];
    if (!type) return next();
    res.setHeader('content-type', type);
    res.setHeader('cache-control', 'public, max-age=86400');
    res.sendFile(path.join(dist, file), (err) => err && next(err));
  });
  return r;
}
