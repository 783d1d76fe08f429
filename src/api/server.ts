import type { Server } from 'node:http';
import express, { type NextFunction, type Request, type Response } from 'express';
import { z } from 'zod';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../log/logger.ts';
import type { BoxRuntime } from '../runtime/box-runtime.ts';
import type { Store } from '../storage/store.ts';

export interface HttpDeps {
  config: Config;
  box: BoxRuntime;
  store: Store;
  root: string;
  log: Logger;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

/** The box films people: it does not listen beyond loopback without a token. */
export function checkListenSafety(config: Config): void {
  if (!LOOPBACK.test(config.http.host) && !config.http.token)
    throw new Error(`refusing to listen on ${config.http.host} without http.token: set a token (16+ characters) or listen on 127.0.0.1`);
}

const commandBody = z.strictObject({ command: z.string().min(1).max(64), payload: z.record(z.string(), z.unknown()).optional(), command_id: z.string().max(100).optional() });

export function createApp(d: HttpDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(express.json({ limit: '64kb' }));

  app.get('/api/health', (_req, res) => {
    res.json({ ok: true });
  });

  const auth = (req: Request, res: Response, next: NextFunction): void => {
    const token = d.config.http.token;
    if (!token || req.get('authorization') === `Bearer ${token}`) return next();
    res.status(401).json({ error: 'unauthorized: send Authorization: Bearer <token>' });
  };

  app.get('/api/status', (_req, res) => {
    res.json(d.box.status());
  });

  app.post('/api/commands', auth, async (req, res) => {
    const body = commandBody.safeParse(req.body);
    if (!body.success) {
      res.status(400).json({ error: body.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ') });
      return;
    }
    const result = await d.box.handleCommand(body.data.command, body.data.payload ?? {}, { source: 'api' }, body.data.command_id);
    res.status(result.ok ? 200 : 409).json(result);
  });

  app.get('/api/events', auth, (req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    res.write(': rigcam events\n\n');
    const onStatus = (m: unknown): void => {
      res.write(`data: ${JSON.stringify(m)}\n\n`);
    };
    d.box.on('status', onStatus);
    req.on('close', () => d.box.off('status', onStatus));
  });

  // Bad JSON bodies and other client errors: a 4xx JSON answer, never a 500 with a stack.
  app.use((err: Error & { status?: number; type?: string }, _req: Request, res: Response, _next: NextFunction) => {
    const status = err.status && err.status >= 400 && err.status < 500 ? err.status : 500;
    if (status === 500) d.log.error({ err: err.message }, 'http error');
    res.status(status).json({ error: status === 500 ? 'internal error' : `body: ${err.message}` });
  });
  return app;
}

export function startHttp(d: HttpDeps): Promise<Server> {
  const app = createApp(d);
  return new Promise((resolve, reject) => {
    const server = app.listen(d.config.http.port, d.config.http.host, () => resolve(server));
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new Error(err.code === 'EADDRINUSE' ? `port ${d.config.http.port} on ${d.config.http.host} is in use` : err.message)),
    );
  });
}
