/**
 * WAL checkpoints off the event loop (WalCheckpointExtension): rigcam's connection stops checkpointing and the real
 * sqlite3 tool does it from another process through the real tool shell. The database file only grows when a
 * checkpoint copies the WAL into it, so its size says who checkpointed: these tests watch it while frame batches
 * commit past SQLite's 1000-page threshold.
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { createLogger, silentLogger } from '../../src/log/logger.ts';
import { WalCheckpointExtension } from '../../src/runtime/extensions/wal-checkpoint.ts';
import type { CheckpointResult } from '../../src/storage/wal-checkpoint.ts';
import { openDatabase } from '../../src/storage/database.ts';
import { Store } from '../../src/storage/store.ts';
import { ToolShell } from '../../src/supervise/tool-shell.ts';
import type { FrameRow } from '../../src/timing/frame-row.ts';
import { spawnSync } from 'node:child_process';
import { skipUnlessCi } from '../helpers/requires.ts';
import { tmpDir } from '../helpers/tmp.ts';

const PAGE = 4096;

function box(env?: NodeJS.ProcessEnv): { file: string; store: Store; shell: ToolShell; recording: number; size: (suffix?: string) => number; commits: (n: number) => void } {
  const file = path.join(tmpDir(), 'rigcam.db');
  const store = new Store(openDatabase(file));
  const shell = new ToolShell({ timeoutMs: 2000, env });
  shell.start();
  const recording = store.createRecording({ trialId: null, cameraId: 'cam0', segment: 0, path: 'a.ts', csvPath: 'a.csv', codec: 'h264', encoder: 'libx264', width: 320, height: 240, fpsNominal: 120, clock: 'monotonic', mono0Us: 0, wall0Us: 0, triggerSource: null, triggerMonoUs: null });
  let index = 0;
  // A frame flush as the recorder makes it: 30 rows in one commit (a few pages of the WAL each).
  const commits = (n: number): void => {
    for (let c = 0; c < n; c++) {
      const rows: FrameRow[] = [];
      for (let i = 0; i < 30; i++) {
        index++;
        rows.push({ recordingId: recording, index, captureUs: index * 8333, wallUs: 1.7e15 + index * 8333, intervalUs: 8333, missingBefore: 0, pts: index * 750, keyframe: index % 30 === 1, bytes: 5000, flags: '' });
      }
      store.insertFrames(rows);
    }
  };
  const size = (suffix = ''): number => (existsSync(file + suffix) ? statSync(file + suffix).size : 0);
  return { file, store, shell, recording, size, commits };
}

describe('WAL checkpoints off the event loop', { skip: skipUnlessCi(spawnSync('sqlite3', ['-version']).status !== 0 && 'sqlite3 is not installed (apt-get install sqlite3)') }, () => {
  it('the connection stops checkpointing; the sqlite3 tool checkpoints from another process; the WAL starts over; stop hands it back', async () => {
    const b = box();
    const ext = new WalCheckpointExtension({ store: b.store, run: (c, a, t) => b.shell.run(c, a, t), log: silentLogger(), pollMs: 3_600_000 });
    try {
      await ext.start();
      assert.equal(ext.last, null, 'no checkpoint at start: the first comes when the WAL holds 1000 pages');
      const db0 = b.size();
      b.commits(600);
      assert.ok(b.size('-wal') > 1500 * PAGE, `the WAL grew past SQLite's 1000-page threshold (${b.size('-wal')} bytes)`);
      assert.equal(b.size(), db0, 'the connection did not checkpoint into the database file itself');

      const r = await ext.checkpointNow();
      assert.ok(r && !r.busy && r.walPages > 1500 && r.checkpointed === r.walPages, `a complete checkpoint: ${JSON.stringify(r)}`);
      assert.ok(b.size() > db0 + 100 * PAGE, `the pages are in the database file (${db0} -> ${b.size()} bytes; the WAL holds many versions of the same pages)`);
      const wal1 = b.size('-wal');
      b.commits(1);
      assert.ok(b.size('-wal') < 20 * PAGE, `the next commit started the WAL over and cut the file back (${wal1} -> ${b.size('-wal')} bytes): its size is what waits`);
      b.commits(600);
      const r2 = await ext.checkpointNow();
      assert.ok(r2 && r2.walPages < r.walPages * 1.5, `the WAL did not keep growing (${r.walPages} then ${r2?.walPages} pages)`);

      await ext.stop();
      const db1 = b.size();
      b.commits(1500);
      assert.ok(b.size() > db1, 'after stop the connection checkpoints itself again');
      assert.equal(b.store.frameCount(b.recording), 2701 * 30, 'every row is there');
    } finally {
      await ext.stop();
      b.shell.close();
      b.store.close();
    }
    const again = openDatabase(b.file);
    assert.equal(again.pragma('integrity_check', { simple: true }), 'ok');
    again.close();
  });

  it('checkpoints by itself once the WAL holds 1000 pages, not before', async () => {
    const b = box();
    const ext = new WalCheckpointExtension({ store: b.store, run: (c, a, t) => b.shell.run(c, a, t), log: silentLogger(), pollMs: 50 });
    try {
      await ext.start();
      b.commits(150); // a few hundred pages: under the threshold
      await new Promise((r) => setTimeout(r, 400));
      assert.equal(ext.last, null, `no checkpoint under 1000 pages (${b.size('-wal')} bytes)`);
      const db0 = b.size();
      const last = (): CheckpointResult | null => ext.last; // read anew each time (the extension sets it)
      for (let i = 0; i < 60 && !last(); i++) {
        b.commits(20);
        await new Promise((r) => setTimeout(r, 50));
      }
      const r = last();
      // At least the threshold; above it only by what was committed while sqlite3 started (a loaded CI machine: generous).
      assert.ok(r && r.walPages >= 1000 && r.walPages < 3000, `checkpointed at the threshold: ${JSON.stringify(r)}`);
      assert.ok(b.size() > db0, 'into the database file');
    } finally {
      await ext.stop();
      b.shell.close();
      b.store.close();
    }
  });

  it('without the tool (or after three failures in a row) the connection checkpoints itself, and says so', async () => {
    // A stand-in sqlite3 that runs the real one while its flag file exists, and fails like a broken disk after.
    const bin = path.join(tmpDir(), 'bin');
    mkdirSync(bin);
    const flag = path.join(bin, 'works');
    const real = ['/usr/bin/sqlite3', '/bin/sqlite3'].find((p) => existsSync(p))!;
    writeFileSync(path.join(bin, 'sqlite3'), `#!/bin/sh\n[ -e '${flag}' ] && exec '${real}' "$@"\necho 'Error: disk I/O error' >&2\nexit 1\n`);
    chmodSync(path.join(bin, 'sqlite3'), 0o755);
    writeFileSync(flag, '');

    for (const env of [{ ...process.env, PATH: path.join(tmpDir(), 'empty') }, { ...process.env, PATH: `${bin}:${process.env.PATH}` }]) {
      const missing = !env.PATH!.startsWith(bin);
      const out = new PassThrough();
      let logged = '';
      out.on('data', (d: Buffer) => (logged += d.toString()));
      const b = box(env);
      const ext = new WalCheckpointExtension({ store: b.store, run: (c, a, t) => b.shell.run(c, a, t), log: createLogger({ level: 'warn', destination: out }), pollMs: 3_600_000 });
      try {
        await ext.start();
        if (missing) {
          assert.match(logged, /sqlite3 is not installed.*WAL checkpoints stay on the event loop \(install sqlite3/);
          assert.equal(await ext.checkpointNow(), null, 'nothing is run elsewhere');
        } else {
          assert.ok(await ext.checkpointNow(), 'the stand-in checkpoints while it works');
          unlinkSync(flag);
          for (let i = 0; i < 3; i++) assert.equal(await ext.checkpointNow(), null);
          assert.match(logged, /sqlite3 failed \(exit 1\)/);
          assert.match(logged, /WAL checkpoints are back on the event loop/);
        }
        const db0 = b.size();
        b.commits(600);
        assert.ok(b.size() > db0, 'the connection checkpointed into the database file itself');
      } finally {
        await ext.stop();
        b.shell.close();
        b.store.close();
      }
    }
  });
});
