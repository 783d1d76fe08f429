import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { describe, it } from 'node:test';
import { ffprobeCount, sleep, startTestBox } from '../runtime/runtime-helpers.ts';

/** Another process takes the database's write lock and holds it for `ms`; resolves once it holds it. */
async function holdWriteLock(dbFile: string, ms: number): Promise<{ exited: Promise<number> }> {
  const script = `const D = require('better-sqlite3'); const db = new D(process.argv[1]); db.exec('BEGIN IMMEDIATE');
    db.prepare("INSERT INTO sessions (name, metadata, started_at) VALUES ('locker', '{}', 'x')").run();
    process.stdout.write('locked\\n'); setTimeout(() => { db.exec('COMMIT'); db.close(); }, Number(process.argv[2]));`;
  const child = spawn(process.execPath, ['-e', script, dbFile, String(ms)], { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<number>((r) => child.on('exit', (code) => r(code ?? -1)));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => (d.toString().includes('locked') ? resolve() : undefined));
    child.on('exit', () => reject(new Error('lock holder exited before taking the lock')));
  });
  return { exited };
}

const csvRows = (file: string): number => readFileSync(file, 'utf8').split('\n').filter((l) => l.length).length - 1;

describe('a write lock held by another process', () => {
  it('7 s of lock during a trial: no row lost, the event loop not blocked', async (ctx) => {
    const t = await startTestBox({ cameras: 1, extra: { recording: { stop_wait_ms: 1000 } } });
    ctx.after(() => t.close());
    const dbFile = path.join(t.config.data_dir, 'rigcam.db');
    const r = await t.box.handleCommand('start_recording', { session_prefix: 'lock' }, { source: 'api' });
    assert.equal(r.ok, true, r.error);
    const id = (r.data!.recordings as Array<{ recording_id: number }>)[0]!.recording_id;
    await sleep(1000);
    const { exited } = await holdWriteLock(dbFile, 7000);
    const rowsAtLock = t.store.frameCount(id);
    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    await sleep(3500);
    // Readers still read under the lock (WAL): the rows did not reach the database while it was held.
    const rowsMidLock = t.store.frameCount(id);
    const code = await exited;
    loop.disable();
    assert.equal(code, 0);
    assert.ok(rowsMidLock === rowsAtLock, `rows went in while the lock was held: ${rowsAtLock} → ${rowsMidLock}`);
    // Before the fix each insert waited out a 5 s busy timeout (4.8 s stalls). A shared 2-core CI box adds
    // scheduler stalls of a few hundred ms now and then, whoever holds the lock: p99 must stay < 100 ms and no
    // stall may come near a busy timeout.
    const p99 = loop.percentile(99) / 1e6;
    const maxMs = loop.max / 1e6;
    assert.ok(p99 < 100, `event loop p99 ${p99.toFixed(0)} ms under the held lock`);
    assert.ok(maxMs < 1000, `event loop blocked ${maxMs.toFixed(0)} ms under the held lock`);
    await sleep(1000);
    const stop = await t.box.handleCommand('stop_recording', {}, { source: 'api' });
    assert.equal(stop.ok, true, stop.error);
    const row = t.store.recording(id)!;
    const file = path.join(t.root, row.path);
    const frames = ffprobeCount(file);
    assert.ok(frames > 200, `frames ${frames}`);
    assert.equal(row.state, 'complete', row.stop_reason ?? '');
    assert.equal(row.frame_count, frames, 'file frames = frame_count');
    assert.equal(t.store.frameCount(id), frames, 'file frames = database rows');
    assert.equal(csvRows(path.join(t.root, row.csv_path)), frames, 'file frames = CSV rows');
    const idx = t.store.frames(id).map((f) => f.frame_index);
    assert.deepEqual(idx, Array.from({ length: frames }, (_, i) => i + idx[0]!), 'no index missing');
    await t.close();
  });
});
