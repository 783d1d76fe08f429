// A camera whose source stops sending while alive (SIGSTOP: a hung camera or driver), with another camera recording
// beside it (issue 21): the stalled one is killed and restarted as a new, flagged segment within the stall limit;
// the other camera's recording goes on untouched, frame count and timing continuous.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { it } from 'node:test';
import { sourceStallMs } from '../../src/pipeline/camera-pipeline.ts';
import { ffprobeCount, sleep, startTestBox } from '../runtime/runtime-helpers.ts';

it('one of two cameras stalls mid-trial: new flagged segment for it, the other camera unaffected', async () => {
  const t = await startTestBox({ cameras: 2, extra: { supervisor: { restart_initial_ms: 200, restart_max_ms: 1000, healthy_after_ms: 5000 } } });
  let stopped: number | null = null;
  try {
    const start = await t.box.handleCommand('start_recording', { session_prefix: 'stall' }, { source: 'api' });
    assert.equal(start.ok, true, start.error);
    await sleep(1500);
    const cam0 = t.box.cameras.get('cam0')!;
    stopped = cam0.stats()!.sourcePid!;
    process.kill(stopped, 'SIGSTOP'); // alive, writes nothing
    const at = Date.now();
    const seg = await t.waitStatus('segment_started', (m) => m.camera_id === 'cam0', 30_000);
    const after = Date.now() - at;
    const limit = sourceStallMs(30);
    assert.ok(after >= limit - 500 && after < limit + 8000, `new segment ${after} ms after the stall (limit ${limit} ms)`);
    assert.notEqual(cam0.stats()!.sourcePid, stopped, 'a new source process runs');
    await sleep(1500);
    const stop = await t.box.handleCommand('stop_recording', {}, { source: 'api' });
    assert.equal(stop.ok, true, stop.error);
    const recs = (stop.data!.recordings as Array<{ recording_id: number; camera_id: string }>).map((r) => t.store.recording(r.recording_id)!);

    // The stalled camera: two segments, the cut said why, the gap on the new segment's first frame.
    const c0 = recs.filter((r) => r.camera_id === 'cam0').sort((a, b) => a.segment - b.segment);
    assert.deepEqual(c0.map((r) => r.segment), [0, 1]);
    assert.equal(seg.data.recording_id, c0[1]!.id);
    assert.equal(c0[0]!.stop_reason, 'source restarted');
    const exited = t.statuses.find((m) => m.status === 'source_exited' && m.camera_id === 'cam0');
    assert.equal(exited?.data.problem, 'stalled', JSON.stringify(exited?.data));
    const first = t.store.frames(c0[1]!.id)[0]!;
    assert.ok(first.flags.includes('segment'), `flags ${first.flags}`);
    assert.ok(first.missing_before >= 30 * 4, `frames missing while stalled: ${first.missing_before}`);
    assert.equal(t.store.trial(c0[0]!.trial_id!)!.state, 'interrupted', 'the trial says it has a gap');

    // Every file of the trial: file frames = database rows = CSV rows.
    for (const r of recs) {
      assert.ok(r.frame_count > 10, `${r.path}: ${r.frame_count} frames`);
      assert.equal(ffprobeCount(path.join(t.root, r.path)), r.frame_count, `${r.path}: file frames`);
      assert.equal(t.store.frameCount(r.id), r.frame_count, `${r.path}: database rows`);
      assert.equal(readFileSync(path.join(t.root, r.csv_path), 'utf8').trim().split('\n').length - 1, r.frame_count, `${r.path}: CSV rows`);
    }
    // The other camera: one recording, complete, no frame missing, no gap longer than a few frame periods.
    const c1 = recs.filter((r) => r.camera_id === 'cam1');
    assert.equal(c1.length, 1, 'cam1 was not cut');
    assert.equal(c1[0]!.state, 'complete');
    assert.equal(c1[0]!.dropped, 0);
    const rows = t.store.frames(c1[0]!.id);
    assert.deepEqual(rows.map((x) => x.frame_index), Array.from({ length: rows.length }, (_, i) => i + 1));
    assert.ok(rows.every((x) => x.missing_before === 0 && !x.flags.includes('segment')), 'no frame missing, no segment');
    const gaps = rows.slice(1).map((x, i) => x.capture_us - rows[i]!.capture_us);
    assert.ok(Math.max(...gaps) < 3 * 33_334, `largest interval ${Math.max(...gaps)} µs`);
    const spanFrames = Math.round((rows.at(-1)!.capture_us - rows[0]!.capture_us) / (1e6 / 30)) + 1;
    assert.equal(rows.length, spanFrames, 'a frame for every period of the trial');
    assert.ok(rows.at(-1)!.capture_us - rows[0]!.capture_us > (after + 2500) * 1000, 'it recorded through the whole stall');
  } finally {
    if (stopped !== null) {
      try {
        process.kill(stopped, 'SIGCONT');
        process.kill(stopped, 'SIGKILL');
      } catch {
        /* already killed by the supervisor */
      }
    }
    await t.close();
  }
});
