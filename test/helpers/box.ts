import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { closeHttp, startHttp } from '../../src/api/server.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { BoxRuntime } from '../../src/runtime/box-runtime.ts';
import type { StatusMessage } from '../../src/runtime/status.ts';
import { openDatabase, type Db } from '../../src/storage/database.ts';
import { Store } from '../../src/storage/store.ts';
import { tmpDir } from './tmp.ts';

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
  waitStatus: (name: string, pred?: (m: StatusMessage) => boolean, timeoutMs?: number) => Promise<StatusMessage>;
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
  const dir = tmpDir('rigcam-api-');
  const cams = Array.from({ length: opts.cameras ?? 1 }, (_, i) => ({ id: `cam${i}`, source: 'test', width: 320, height: 240, fps: 15, gop_seconds: 0.5, bitrate_kbps: 300 }));
  const config = parseConfig({
    data_dir: dir,
    cameras: cams,
    telemetry: { emit_interval_ms: 250 },
    recording: { stop_wait_ms: 1000 },
    http: { host: '127.0.0.1', port: 0, token: opts.token ?? null },
    ...(opts.extra ?? {}),
  });
  const db = openDatabase(path.join(dir, 'rigcam.db'));
  const store = new Store(db);
  const root = path.join(dir, 'recordings');
  const log = silentLogger();
  const box = new BoxRuntime({ config, store, log, root });
  const server = await startHttp({ config, box, store, root, log });
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

  const waitStatus: HttpBox['waitStatus'] = (name, pred = () => true, timeoutMs = 15_000) =>
    new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        box.off('status', on);
        reject(new Error(`no ${name} status within ${timeoutMs} ms`));
      }, timeoutMs);
      const on = (m: StatusMessage): void => {
        if (m.status === name && pred(m)) {
          clearTimeout(t);
          box.off('status', on);
          resolve(m);
        }
      };
      box.on('status', on);
    });

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
      await box.shutdown();
      db.close();
    },
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
