import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { rigcamBin } from '../helpers/cli.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { ffprobeCount, sleep } from './runtime-helpers.ts';

describe('rigcam serve', () => {
  it('SIGTERM in the middle of a trial: exits 0 well within 20 s, both files complete and playable', async () => {
    const dir = tmpDir();
    const cfg = path.join(dir, 'rigcam.yaml');
    writeFileSync(
      cfg,
      `data_dir: ${dir}\nhttp:\n  port: 0\ncameras:\n  - { id: left, width: 320, height: 240, fps: 30 }\n  - { id: right, width: 320, height: 240, fps: 25 }\n`,
    );
    const child = spawn(process.execPath, [rigcamBin, 'serve', '--demo', '120', '--config', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const t0 = Date.now();
    while (!out.includes('"recording_started"')) {
      if (Date.now() - t0 > 20_000) throw new Error(`no recording_started: ${out}`);
      await sleep(100);
    }
    await sleep(2000);
    const sent = Date.now();
    child.kill('SIGTERM');
    const code = await new Promise((r) => child.on('close', r));
    const took = Date.now() - sent;
    assert.equal(code, 0, out.slice(-2000));
    assert.ok(took < 20_000, `took ${took} ms`);
    // Every line on stdout is one JSON object (journald-friendly structured logs).
    for (const line of out.trim().split('\n')) assert.doesNotThrow(() => JSON.parse(line), `not JSON: ${line}`);
    const db = new Database(path.join(dir, 'rigcam.db'), { readonly: true });
    const recs = db.prepare('SELECT * FROM recordings ORDER BY camera_id').all() as Array<{ id: number; camera_id: string; path: string; state: string; frame_count: number; stop_reason: string | null }>;
    const rows = (id: number): number => (db.prepare('SELECT COUNT(*) n FROM frames WHERE recording_id = ?').get(id) as { n: number }).n;
    assert.deepEqual(recs.map((r) => r.camera_id), ['left', 'right']);
    for (const r of recs) {
      assert.equal(r.state, 'complete', `${r.camera_id} marked complete`);
      assert.equal(r.stop_reason, 'shutdown');
      assert.ok(r.frame_count >= 45, `${r.camera_id}: ${r.frame_count} frames`);
      assert.equal(ffprobeCount(path.join(dir, 'recordings', r.path)), r.frame_count);
      assert.equal(rows(r.id), r.frame_count);
    }
    const trial = db.prepare('SELECT state FROM trials').get() as { state: string };
    db.close();
    assert.equal(trial.state, 'complete');
  });

  it('a port in use: exits 1 naming it, and leaves no camera source running (the cameras start while the API loads)', async () => {
    const dir = tmpDir();
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
    const port = (busy.address() as { port: number }).port;
    const cfg = path.join(dir, 'rigcam.yaml');
    writeFileSync(cfg, `data_dir: ${dir}\nhttp:\n  port: ${port}\ncameras:\n  - { id: left, width: 320, height: 240, fps: 30 }\n`);
    // Every process this serve starts inherits the marker; none may be left once it has exited.
    const marker = `RIGCAM_TEST_MARK=${path.basename(dir)}`;
    const child = spawn(process.execPath, [rigcamBin, 'serve', '--config', cfg], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RIGCAM_TEST_MARK: path.basename(dir) } });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise((r) => child.on('close', r));
    busy.close();
    assert.equal(code, 1);
    assert.match(err, new RegExp(`port ${port} on 127\\.0\\.0\\.1 is in use`));
    const left = readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
      try {
        return readFileSync(`/proc/${p}/environ`, 'latin1').split('\0').includes(marker);
      } catch {
        return false; // gone, or not ours to read
      }
    });
    assert.deepEqual(left.map((p) => readFileSync(`/proc/${p}/cmdline`, 'latin1').replaceAll('\0', ' ')), [], 'processes left running');
  });
});
