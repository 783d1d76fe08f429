import express, { type Router } from 'express';
import { requireToken } from './auth.ts';
import type { ApiContext } from './context.ts';
import { HttpError, parsePart } from './http-error.ts';
import { serveMjpeg } from './mjpeg-stream.ts';
import { cameraOr404 } from './routes-control.ts';
import { tokenQuery } from './schemas.ts';

export function liveRoutes(c: ApiContext): Router {
  const r = express.Router();
  // EventSource and <img> cannot send headers: these routes also take ?token=.
  const authLink = requireToken(c.config.http.token, true);

  r.get('/events', authLink, (req, res) => {
    parsePart('query', tokenQuery, req.query);
    if (c.events.full) throw new HttpError(503, `too many event-stream clients (http.max_event_clients ${c.config.http.max_event_clients})`, null, { 'retry-after': '10' });
    c.events.add(res);
  });

  r.get('/cameras/:id/preview.mjpeg', authLink, (req, res) => {
    const rt = cameraOr404(c, req, tokenQuery);
    if (!serveMjpeg(res, c.hub.preview(rt.id))) throw new HttpError(503, `camera ${rt.id}: too many preview viewers`, null, { 'retry-after': '5' });
  });

  r.get('/cameras/:id/snapshot.jpg', authLink, async (req, res) => {
    const rt = cameraOr404(c, req, tokenQuery);
    let jpeg: Buffer;
    try {
      jpeg = await c.hub.snapshot(rt.id);
    } catch (err) {
      throw new HttpError(503, (err as Error).message, null, { 'retry-after': '1' });
    }
    res.setHeader('content-type', 'image/jpeg');
    res.setHeader('cache-control', 'no-store');
    res.end(jpeg);
  });

  return r;
}
