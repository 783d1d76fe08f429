import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { closeHttp, startHttp } from '../../src/api/server.ts';
import type { Config } from '../../src/config/schema.ts';
import { silentLogger } from '../../src/log/logger.ts';
import type { BoxRuntime } from '../../src/runtime/box-runtime.ts';
import type { Db } from '../../src/storage/database.ts';
import type { Store } from '../../src/storage/store.ts';
import type { SeenStatus } from './wait-status.ts';
import { startTestBox } from '../runtime/runtime-helpers.ts';

export interface HttpBox {
  /** `http://127.0.0.1:<port>` */
  url: string;
  box: BoxRuntime;
  store: Store;
  db: Db;
  root: string;
  config: Config;
  server: Server;
  /** fetch against the box, with the token (when configured) unless `auth: false`. */
  api: (p: string, init?: RequestInit & { auth?: boolean; json?: unknown }) => Promise<Response>;
  waitStatus: (name: string, pred?: (m: SeenStatus) => boolean, timeoutMs?: number) => Promise<SeenStatus>;
  close: () => Promise<void>;
}

export interface HttpBoxOptions {
  token?: string | null;
  cameras?: number;
  /** Extra top-level config keys (merged over the defaults below). */
  extra?: Record<string, unknown>;
}

/**
 * A real box (test cameras at 320x240, 15 fps) serving the real HTTP API on an ephemeral loopback port, wired
 * the way `rigcam serve` wires it: HTTP first, then `initialize()` (every camera ready before this resolves).
 */
export async function startHttpBox(opts: HttpBoxOptions = {}): Promise<HttpBox> {
  const cams = Array.from({ length: opts.cameras ?? 1 }, (_, i) => ({ id: `cam${i}`, source: 'test', width: 320, height: 240, fps: 15, gop_seconds: 0.5, bitrate_kbps: 300 }));
  const t = await startTestBox({
    init: false,
    extra: {
      cameras: cams,
      telemetry: { emit_interval_ms: 250 },
      recording: { stop_wait_ms: 1000 },
      http: { host: '127.0.0.1', port: 0, token: opts.token ?? null },
      ...(opts.extra ?? {}),
    },
  });
  const { box, store, db, root, config } = t;
  const server = await startHttp({ config, box, store, root, log: silentLogger() });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  await box.initialize();
  for (const c of box.cameras.values()) if (c.state !== 'ready') throw new Error(`test camera ${c.id} did not start: ${c.lastError}`);

  const api: HttpBox['api'] = (p, init = {}) => {
    const { auth = true, json, ...rest } = init;
    const headers = new Headers(rest.headers);
    if (auth && config.http.token && !headers.has('authorization')) headers.set('authorization', `Bearer ${config.http.token}`);
    if (json !== undefined) {
      headers.set('content-type', 'application/json');
      rest.body = JSON.stringify(json);
      rest.method ??= 'POST';
    }
    return fetch(url + p, { ...rest, headers });
  };

  const waitStatus: HttpBox['waitStatus'] = t.waitStatus;

  return {
    url,
    box,
    store,
    db,
    root,
    config,
    server,
    api,
    waitStatus,
    close: async () => {
      await closeHttp(server);
      await t.close();
    },
  };
}

export { sleep } from './wait-status.ts';
