import express, { type Router } from 'express';
import type { StatusMessage } from '../runtime/status.ts';
import { requireToken } from './auth.ts';
import type { ApiContext } from './context.ts';
import { HttpError, parsePart } from './http-error.ts';
import { serveMjpeg } from './mjpeg-stream.ts';
import { cameraOr404 } from './routes-control.ts';
import { tokenQuery } from './schemas.ts';

/** An event-stream client this far behind is dropped rather than buffered without bound. */
const MAX_SSE_BACKLOG = 1024 * 1024;

export function liveRoutes(c: ApiContext): Router {
  const r = express.Router();
  // EventSource and <img> cannot send headers: these routes also take ?token=.
  const authLink = requireToken(c.config.http.token, true);

  r.get('/events', authLink, (req, res) => {
    parsePart('query', tokenQuery, req.query);
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write('retry: 3000\n: rigcam events\n\n');
    const onStatus = (m: StatusMessage): void => {
      if (res.writableEnded) return; // ended by a server close; 'close' removes this listener shortly
      if (res.writableLength > MAX_SSE_BACKLOG) {
        res.destroy();
        return;
      }
      res.write(`data: ${JSON.stringify(m)}\n\n`);
    };
    // Proxies and phones drop silent connections: a comment line now and then keeps it open.
    const keepAlive = setInterval(() => res.writableEnded || res.write(': keep-alive\n\n'), c.sseKeepAliveMs ?? 15_000);
    c.box.on('status', onStatus);
    c.streams.add(res);
    res.on('close', () => {
      clearInterval(keepAlive);
      c.box.off('status', onStatus);
      c.streams.delete(res);
    });
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
