import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { after } from 'node:test';
import { parseConfig, recordingsRoot } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { BoxRuntime } from '../../src/runtime/box-runtime.ts';
import { openDatabase, type Db } from '../../src/storage/database.ts';
import { Store } from '../../src/storage/store.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { seen, sleep, waitForStatus, type SeenStatus } from '../helpers/wait-status.ts';

export interface TestBox {
  box: BoxRuntime;
  store: Store;
  db: Db;
  root: string;
  config: Config;
  statuses: SeenStatus[];
  waitStatus: (name: string, pred?: (m: SeenStatus) => boolean, timeoutMs?: number) => Promise<SeenStatus>;
  close: () => Promise<void>;
}

/**
 * Boxes a test left open (an assertion failed before its close): shut down when the file's tests end, so their
 * sources (ffmpeg children) never keep the test process alive until the runner's per-file timeout.
 */
const openBoxes = new Set<() => Promise<void>>();
after(async () => {
  for (const close of [...openBoxes]) await close().catch(() => {});
});

/** A real box with `n` test cameras at a small size, in a temp dir. */
export async function startTestBox(opts: { cameras?: number; extra?: Record<string, unknown>; init?: boolean; sysRoot?: string } = {}): Promise<TestBox> {
  const dir = tmpDir('rigcam-box-');
  const cams = Array.from({ length: opts.cameras ?? 2 }, (_, i) => ({ id: `cam${i}`, source: 'test', width: 320, height: 240, fps: 30 }));
  const config = parseConfig({ data_dir: dir, cameras: cams, telemetry: { emit_interval_ms: 200 }, ...(opts.extra ?? {}) });
  const db = openDatabase(path.join(dir, 'rigcam.db'));
  const store = new Store(db);
  const root = recordingsRoot(config);
  const box = new BoxRuntime({ config, store, log: silentLogger(), root, sysRoot: opts.sysRoot });
  const statuses: SeenStatus[] = [];
  box.on('status', (m) => statuses.push(seen(m)));
  const waitStatus: TestBox['waitStatus'] = (name, pred, timeoutMs) => waitForStatus(box, name, pred, timeoutMs);
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closed ??= (async () => {
      openBoxes.delete(close);
      await box.shutdown();
      db.close();
    })());
  openBoxes.add(close);
  if (opts.init !== false) await box.initialize();
  return {
    box,
    store,
    db,
    root,
    config,
    statuses,
    waitStatus,
    close,
  };
}

export function ffprobeCount(file: string): number {
  const out = execFileSync('ffprobe', ['-v', 'error', '-count_frames', '-select_streams', 'v:0', '-show_entries', 'stream=nb_read_frames', '-of', 'csv=p=0', file]);
  return Number.parseInt(out.toString().trim(), 10);
}

export { sleep };
