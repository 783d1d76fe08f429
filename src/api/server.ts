import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import express from 'express';
import type { Config } from '../config/schema.ts';
import { monoNowUs } from '../clock.ts';
import { loopbackHostOnly, sameOriginOnly } from './auth.ts';
import type { ApiContext, HttpDeps } from './context.ts';
import { errorHandler, HttpError, parsePart } from './http-error.ts';
import { openApiDocument } from './openapi.ts';
import { packageVersion } from '../version.ts';
import { PreviewHub } from '../pipeline/preview.ts';
import { EventStreams } from './sse.ts';
import { controlRoutes } from './routes-control.ts';
import { noQuery } from './schemas.ts';
import { dataRoutes } from './routes-data.ts';
import { liveRoutes } from './routes-live.ts';
import { offloadRoutes } from './routes-offload.ts';
import { qualityRoutes, vendorRoutes } from './routes-quality.ts';

export type { HttpDeps } from './context.ts';

export { checkListenSafety } from './listen-safety.ts';

const here = path.dirname(fileURLToPath(import.meta.url));

/** The page's folder, next to the api folder: src/web for the sources, dist/web in a build (npm run build copies it). */
const webDir = (): string => path.join(here, '../web');

const contexts = new WeakMap<express.Express, ApiContext>();
const serverContexts = new WeakMap<Server, ApiContext>();

export function createApp(d: HttpDeps): express.Express {
  const events = new EventStreams(d.box, {
    keepAliveMs: d.sseKeepAliveMs,
    maxClients: d.config.http.max_event_clients,
    maxBacklogBytes: d.config.http.event_backlog_kb * 1024,
  });
  d.box.use(events); // ended with the box too
  const c: ApiContext = { ...d, hub: new PreviewHub((id) => d.box.cameras.get(id)?.frameSource() ?? null, { ...d.preview, log: d.log }), events };
  const app = express();
  contexts.set(app, c);
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use((_req, res, next) => {
    res.locals.arrivalUs = monoNowUs();
    res.setHeader('x-content-type-options', 'nosniff');
    res.setHeader('referrer-policy', 'no-referrer');
    next();
  });
  app.use(loopbackHostOnly(d.config.http.token));
  app.use('/api', sameOriginOnly);

  // Built on first request: converting every schema to JSON Schema is start-up time for a page rarely asked for.
  let doc: ReturnType<typeof openApiDocument> | null = null;
  app.get('/api/health', (req, res) => {
    parsePart('query', noQuery, req.query);
    // ok is liveness; the disk guard's level says whether trials can record (stop: refused and stopped).
    const disk = d.box.status().disk;
    // offload_stale: a backup that has not succeeded for offload.stale_after_hours while recordings wait.
    const offload = d.box.offload.status();
    res.json({ ok: true, auth_required: Boolean(d.config.http.token), disk_level: disk?.level ?? 'unknown', recording_allowed: disk !== null && disk.level !== 'stop' && disk.level !== 'unknown' && disk.start_refused === null, ...(disk?.start_refused ? { reason: disk.start_refused } : {}), offload_stale: offload.warning !== null, ...(offload.warning ? { offload_warning: offload.warning } : {}) });
  });
  app.get('/api/openapi.json', (req, res) => {
    parsePart('query', noQuery, req.query);
    res.json((doc ??= openApiDocument(packageVersion())));
  });
  app.use('/api', controlRoutes(c), dataRoutes(c), liveRoutes(c), qualityRoutes(c), offloadRoutes(c));
  app.use('/api', (req, _res, next) => next(new HttpError(404, `no route ${req.method} ${req.originalUrl.split('?')[0]!.slice(0, 200)}`)));

  app.use('/vendor', vendorRoutes());
  app.use(
    express.static(webDir(), {
      index: 'index.html',
      fallthrough: true,
      setHeaders: (res) => {
        res.setHeader('cache-control', 'no-cache');
        res.setHeader('content-security-policy', "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'");
      },
    }),
  );
  app.use((req, _res, next) => next(new HttpError(404, `not found: ${req.path.slice(0, 200)}`)));
  app.use(errorHandler((err) => d.log.error({ err: err.message }, 'http error')));
  return app;
}

/** End the event streams and previews (their decoders stop): they never end by themselves. */
function endLiveStreams(c: ApiContext): void {
  c.events.stop();
  c.hub.close();
}

export function startHttp(d: HttpDeps): Promise<Server> {
  const app = createApp(d);
  const c = contexts.get(app)!;
  const server = createServer(app);
  // `server.close()` waits for every connection to end; open streams would hold it forever.
  const close = server.close.bind(server);
  server.close = ((cb?: (err?: Error) => void) => {
    endLiveStreams(c);
    return close(cb);
  }) as Server['close'];
  serverContexts.set(server, c);
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void =>
      reject(new Error(err.code === 'EADDRINUSE' ? `port ${d.config.http.port} on ${d.config.http.host} is in use` : `cannot listen on ${d.config.http.host}:${d.config.http.port}: ${err.message}`));
    server.once('error', onError);
    server.listen(d.config.http.port, d.config.http.host, () => {
      server.off('error', onError);
      resolve(server);
    });
  });
}

/** Stop serving: end live streams, stop accepting, close every connection (idle keep-alive ones too). */
export async function closeHttp(server: Server): Promise<void> {
  const c = serverContexts.get(server);
  if (c) endLiveStreams(c);
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
