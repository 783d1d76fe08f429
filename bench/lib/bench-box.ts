import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { startHttp } from '../../src/api/server.ts';
import { parseConfig, recordingsRoot } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { silentLogger, type Logger } from '../../src/log/logger.ts';
import { BoxRuntime } from '../../src/runtime/box-runtime.ts';
import type { CameraRuntime } from '../../src/runtime/camera-runtime.ts';
import { openDatabase, type Db } from '../../src/storage/database.ts';
import { Store } from '../../src/storage/store.ts';
import { waitForStatus, type SeenStatus } from '../../test/helpers/wait-status.ts';

export interface BenchCamera {
  id: string;
  width: number;
  height: number;
  fps: number;
  gop_seconds?: number;
  bitrate_kbps?: number;
}

export interface BenchBoxOptions {
  dir: string;
  cameras: BenchCamera[];
  /** Extra top-level config keys. */
  extra?: Record<string, unknown>;
  /** Serve the HTTP API on 127.0.0.1 (ephemeral port), started before the cameras as `rigcam serve` does. */
  http?: boolean;
  log?: Logger;
}

export interface BenchBox {
  box: BoxRuntime;
  store: Store;
  db: Db;
  root: string;
  config: Config;
  server: Server | null;
  /** `http://127.0.0.1:<port>` when http is on. */
  url: string | null;
  camera: (id: string) => CameraRuntime;
  waitStatus: (name: string, pred?: (m: SeenStatus) => boolean, timeoutMs?: number) => Promise<SeenStatus>;
  close: () => Promise<void>;
}

/** A real box of `test` cameras in `dir`, wired the way `rigcam serve` wires it; resolves once every camera is ready. */
export async function startBenchBox(o: BenchBoxOptions): Promise<BenchBox> {
  const config = parseConfig({
    data_dir: o.dir,
    cameras: o.cameras.map((c) => ({ source: 'test', ...c })),
    http: { host: '127.0.0.1', port: 0 },
    ...(o.extra ?? {}),
  });
  const log = o.log ?? silentLogger();
  const db = openDatabase(path.join(o.dir, 'rigcam.db'));
  const store = new Store(db);
  const root = recordingsRoot(config);
  const box = new BoxRuntime({ config, store, log, root });
  const server = o.http ? await startHttp({ config, box, store, root, log }) : null;
  const url = server ? `http://127.0.0.1:${(server.address() as AddressInfo).port}` : null;
  await box.initialize();
  for (const c of box.cameras.values()) if (c.state !== 'ready') throw new Error(`camera ${c.id} did not start: ${c.lastError}`);

  const waitStatus: BenchBox['waitStatus'] = (name, pred, timeoutMs) => waitForStatus(box, name, pred, timeoutMs);

  return {
    box,
    store,
    db,
    root,
    config,
    server,
    url,
    camera: (id) => {
      const c = box.cameras.get(id);
      if (!c) throw new Error(`no camera ${id}`);
      return c;
    },
    waitStatus,
    close: async () => {
      await box.shutdown();
      if (server) {
        await new Promise<void>((r) => server.close(() => r()));
        server.closeAllConnections();
      }
      db.close();
    },
  };
}

/** A command through the box's one entry point that must succeed. */
export async function command(b: BenchBox, name: string, payload: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
  const r = await b.box.handleCommand(name, payload, { source: 'cli' });
  if (!r.ok) throw new Error(`${name} failed: ${r.error}`);
  return r.data ?? {};
}

/** Recording ids of a start_recording result. */
export function recordingIds(startData: Record<string, unknown>): number[] {
  const recs = startData.recordings as Array<{ recording_id: number }> | undefined;
  return (recs ?? []).map((r) => r.recording_id);
}
