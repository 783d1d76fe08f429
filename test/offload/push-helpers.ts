import { existsSync, readFileSync, statSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after } from 'node:test';
import { closeHttp, startHttp } from '../../src/api/server.ts';
import { parseConfig, recordingsRoot } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { createLogger, silentLogger } from '../../src/log/logger.ts';
import { BoxRuntime } from '../../src/runtime/box-runtime.ts';
import { openDatabase, type Db } from '../../src/storage/database.ts';
import { Store } from '../../src/storage/store.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { seen, sleep, waitForStatus, type SeenStatus } from '../helpers/wait-status.ts';

export const api = { source: 'api' as const };

export interface OffloadBox {
  box: BoxRuntime;
  store: Store;
  db: Db;
  root: string;
  config: Config;
  url: string;
  statuses: SeenStatus[];
  /** The wall clock the offload sees (ms): tests move it instead of waiting. */
  clock: { offsetMs: number };
  waitStatus: (name: string, pred?: (m: SeenStatus) => boolean, timeoutMs?: number) => Promise<SeenStatus>;
  /** A status seen since the box started, or the next one. */
  seenOrWait: (name: string, pred: (m: SeenStatus) => boolean, timeoutMs?: number) => Promise<SeenStatus>;
  /** Record one trial of `ms` and return its recording ids once it is hashed. */
  trial: (label: string, ms: number) => Promise<number[]>;
  close: () => Promise<void>;
}

const open = new Set<() => Promise<void>>();
after(async () => {
  for (const c of [...open]) await c().catch(() => {});
});

/** A real box (one test camera) with the real HTTP API, the given `offload:` and `disk:` config. */
export async function startOffloadBox(extra: Record<string, unknown>, bitrateKbps = 400): Promise<OffloadBox> {
  const dir = tmpDir('rigcam-offload-');
  const config = parseConfig({
    data_dir: dir,
    cameras: [{ id: 'cam0', source: 'test', width: 320, height: 240, fps: 15, gop_seconds: 0.5, bitrate_kbps: bitrateKbps }],
    telemetry: { emit_interval_ms: 500 },
    recording: { stop_wait_ms: 1000 },
    http: { host: '127.0.0.1', port: 0 },
    ...extra,
  });
  const db = openDatabase(path.join(dir, 'rigcam.db'));
  const store = new Store(db);
  const root = recordingsRoot(config);
  const clock = { offsetMs: 0 };
  const box = new BoxRuntime({ config, store, log: process.env.RIGCAM_TEST_LOG ? createLogger({ level: 'debug', destination: process.stderr }) : silentLogger(), root, offloadNow: () => Date.now() + clock.offsetMs });
  const statuses: SeenStatus[] = [];
  box.on('status', (m) => statuses.push(seen(m)));
  const server: Server = await startHttp({ config, box, store, root, log: silentLogger() });
  await box.initialize();
  const waitStatus: OffloadBox['waitStatus'] = (name, pred, timeoutMs) => waitForStatus(box, name, pred, timeoutMs);
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closed ??= (async () => {
      open.delete(close);
      await closeHttp(server);
      await box.shutdown();
      db.close();
    })());
  open.add(close);
  const trial = async (label: string, ms: number): Promise<number[]> => {
    const start = await box.handleCommand('start_recording', { trial_label: label }, api);
    if (!start.ok) throw new Error(`start: ${start.error}`);
    const ids = (start.data!.recordings as Array<{ recording_id: number }>).map((r) => r.recording_id);
    const hashed = Promise.all(ids.map((id) => waitStatus('checksums', (m) => m.data.recording_id === id, 30_000)));
    await sleep(ms);
    const stop = await box.handleCommand('stop_recording', {}, api);
    if (!stop.ok) throw new Error(`stop: ${stop.error}`);
    await hashed;
    return ids;
  };
  const seenOrWait: OffloadBox['seenOrWait'] = (name, pred, timeoutMs) => {
    const s = statuses.find((m) => m.status === name && pred(m));
    return s ? Promise.resolve(s) : waitStatus(name, pred, timeoutMs);
  };
  return { box, store, db, root, config, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, statuses, clock, waitStatus, seenOrWait, trial, close };
}

/** The files of a recording as the box hashed them (path relative to the root, bytes, sha256). */
export function filesOf(b: OffloadBox, id: number): Array<{ path: string; bytes: number; sha256: string }> {
  return b.store.checksumsOf(id).map((c) => ({ path: c.path, bytes: c.bytes, sha256: c.sha256 }));
}

export function sizeOr0(f: string): number {
  return existsSync(f) ? statSync(f).size : 0;
}

export function same(a: string, b: string): boolean {
  return existsSync(a) && existsSync(b) && readFileSync(a).equals(readFileSync(b));
}

/** Poll until `pred` holds (or fail naming `what`). */
export async function until(what: string, pred: () => boolean, timeoutMs = 30_000, everyMs = 50): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}
