import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ffprobeCount, sleep, startTestBox, type TestBox } from '../runtime/runtime-helpers.ts';

describe('a camera source process dies in the middle of a trial', () => {
  let t: TestBox;
  before(async () => {
    t = await startTestBox({ cameras: 1, extra: { supervisor: { restart_initial_ms: 200, restart_max_ms: 1000, healthy_after_ms: 5000 } } });
  });
  after(async () => t.close());

  it('is restarted; the trial continues in a new segment and the gap is in the timing and the journal', async () => {
    const start = await t.box.handleCommand('start_recording', { session_prefix: 'crash' }, { source: 'api' });
    assert.equal(start.ok, true, start.error);
    await sleep(1500);
    const cam = t.box.cameras.get('cam0')!;
    const pid = cam.stats()!.sourcePid!;
    process.kill(pid, 'SIGKILL'); // as a crash would
    await t.waitStatus('segment_started', () => true, 15_000);
    assert.notEqual(cam.stats()!.sourcePid, pid, 'a new source process runs');
    await sleep(1500);
    const stop = await t.box.handleCommand('stop_recording', {}, { source: 'api' });
    assert.equal(stop.ok, true, stop.error);
    const recs = (stop.data!.recordings as Array<{ recording_id: number; path: string; frames: number }>).sort((a, b) => a.recording_id - b.recording_id);
    assert.equal(recs.length, 2, 'two segments');
    assert.match(recs[0]!.path, /crash_trial001_cam0\.ts$/);
    assert.match(recs[1]!.path, /crash_trial001_cam0_seg01\.ts$/);
    for (const r of recs) {
      const row = t.store.recording(r.recording_id)!;
      assert.equal(row.state, 'complete');
      assert.ok(row.frame_count > 10, `segment has frames: ${row.frame_count}`);
      assert.equal(ffprobeCount(path.join(t.root, row.path)), row.frame_count, `${row.path} plays with all its frames`);
      assert.equal(t.store.frameCount(r.recording_id), row.frame_count);
    }
    assert.equal(t.store.recording(recs[0]!.recording_id)!.stop_reason, 'source restarted');
    // The trial has a gap: it says so (interrupted), it is not plainly complete.
    assert.equal(t.statuses.filter((m) => m.status === 'recording_stopped').at(-1)!.data.state, 'interrupted');
    assert.equal(t.store.trial(t.store.recording(recs[0]!.recording_id)!.trial_id!)!.state, 'interrupted');
    // The first frame of the new segment carries the gap since the last frame before the crash.
    const first = t.store.frames(recs[1]!.recording_id)[0]!;
    const lastOld = t.store.frames(recs[0]!.recording_id).at(-1)!;
    assert.ok(first.flags.includes('segment'), `flags ${first.flags}`);
    assert.equal(first.interval_us, first.capture_us - lastOld.capture_us);
    assert.ok(first.missing_before >= 3, `frames lost while the source restarted: ${first.missing_before}`);
    assert.equal(t.store.recording(recs[1]!.recording_id)!.dropped, first.missing_before);
    const journal = t.db.prepare("SELECT name, payload FROM events WHERE kind = 'status' AND name IN ('source_exited', 'segment_started') ORDER BY id").all() as Array<{ name: string; payload: string }>;
    assert.deepEqual(journal.map((j) => j.name), ['source_exited', 'segment_started']);
    assert.ok((JSON.parse(journal[1]!.payload) as { gap_us: number }).gap_us > 100_000, 'gap recorded in the journal');
  });
});
