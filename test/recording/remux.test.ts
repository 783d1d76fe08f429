import assert from 'node:assert/strict';
import { existsSync, mkdirSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { tmpDir } from '../helpers/tmp.ts';
import { ffprobeCount, sleep, startTestBox } from '../runtime/runtime-helpers.ts';

describe('remux to .mp4 by the box', () => {
  it('keep_ts: false: the verified .mp4 replaces the .ts and recordings.path names it; shutdown waits for it', async () => {
    const t = await startTestBox({ cameras: 1, extra: { recording: { remux_mp4: true, keep_ts: false, stop_wait_ms: 1000 } } });
    const r = await t.box.handleCommand('start_recording', { session_prefix: 'rx' }, { source: 'api' });
    assert.equal(r.ok, true, r.error);
    const id = (r.data!.recordings as Array<{ recording_id: number }>)[0]!.recording_id;
    await sleep(1000);
    await t.box.handleCommand('stop_recording', {}, { source: 'api' });
    const ts = path.join(t.root, t.store.recording(id)!.path);
    await t.box.shutdown(); // must wait for the remux: no remux_done check before it
    const row = t.store.recording(id)!;
    assert.ok(row.mp4_path?.endsWith('.mp4'), `mp4_path ${row.mp4_path}`);
    assert.equal(row.path, row.mp4_path, 'path names the file that exists');
    const mp4 = path.join(t.root, row.mp4_path!);
    assert.ok(existsSync(mp4));
    assert.equal(existsSync(ts), false, 'the .ts went after the verified remux');
    assert.equal(ffprobeCount(mp4), row.frame_count);
    assert.ok(t.statuses.some((m) => m.status === 'remux_done' && m.data.recording_id === id));
    await t.close();
  });

  it('a dangling .mp4 symlink pointing outside the root is never written through; the .ts is kept', async () => {
    const t = await startTestBox({ cameras: 1, extra: { recording: { remux_mp4: true, keep_ts: false, stop_wait_ms: 1000 } } });
    const r = await t.box.handleCommand('start_recording', { session_prefix: 'evil' }, { source: 'api' });
    assert.equal(r.ok, true, r.error);
    const id = (r.data!.recordings as Array<{ recording_id: number }>)[0]!.recording_id;
    const ts = path.join(t.root, t.store.recording(id)!.path);
    const outside = path.join(tmpDir('rigcam-outside-'), 'sub');
    mkdirSync(outside);
    const target = path.join(outside, 'victim.mp4');
    symlinkSync(target, ts.replace(/\.ts$/, '.mp4'));
    await sleep(800);
    await t.box.handleCommand('stop_recording', {}, { source: 'api' });
    await t.box.shutdown();
    assert.equal(existsSync(target), false, 'nothing written through the symlink');
    const row = t.store.recording(id)!;
    assert.equal(row.mp4_path, null);
    assert.equal(row.path, path.relative(t.root, ts));
    assert.ok(existsSync(ts), 'the .ts stays');
    assert.equal(ffprobeCount(ts), row.frame_count);
    assert.ok(t.statuses.some((m) => m.status === 'warning' && /already exists/.test(String(m.data.message))), 'a warning says why');
    await t.close();
  });
});
