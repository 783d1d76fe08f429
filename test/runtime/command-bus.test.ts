import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { CommandResult } from '../../src/runtime/command-types.ts';
import { ffprobeCount, sleep, startTestBox, type TestBox } from './runtime-helpers.ts';

const api = { source: 'api' as const };

/**
 * What happens to a camera by itself (unplugged) changes the trial through the same queue as the transports'
 * commands: whichever comes first, the trial ends finalised and consistent — never half-stopped twice.
 */
describe('command bus: device loss and stop in one queue', () => {
  let t: TestBox;
  before(async () => {
    t = await startTestBox({ cameras: 2, extra: { recording: { stop_wait_ms: 1000 } } });
  });
  after(async () => t.close());

  /** The trial and its recordings agree with each other, with the files, and with the statuses. */
  function assertFinalised(trialId: number, statusesFrom: number): { state: string; recordings: Array<{ state: string; stop_reason: string | null; camera_id: string }> } {
    const trial = t.db.prepare('SELECT state FROM trials WHERE id = ?').get(trialId) as { state: string };
    const recs = t.store.recordingsOfTrial(trialId);
    assert.ok(recs.length > 0, 'the trial has recordings');
    for (const r of recs) {
      assert.ok(r.state === 'complete' || r.state === 'interrupted', `recording ${r.id} finalised (${r.state})`);
      assert.ok(r.frame_count > 0, `recording ${r.id} has frames`);
      assert.equal(t.store.frameCount(r.id), r.frame_count, 'frame rows match the count');
      assert.equal(ffprobeCount(path.join(t.root, r.path)), r.frame_count, 'the file holds every frame logged');
    }
    const expected = recs.some((r) => r.state === 'interrupted') ? 'interrupted' : 'complete';
    assert.equal(trial.state, expected, 'the trial state follows its recordings');
    const stops = t.statuses.slice(statusesFrom).filter((s) => s.status === 'recording_stopped' && s.data.trial_id === trialId);
    assert.equal(stops.length, 1, 'exactly one recording_stopped');
    assert.equal(stops[0]!.data.state, expected);
    assert.equal(t.box.status().recording, false);
    assert.equal(t.box.status().trial, null);
    return { state: trial.state, recordings: recs };
  }

  async function startTrial(cameras: string[]): Promise<number> {
    const r = await t.box.handleCommand('start_recording', { session_prefix: 'race', camera_ids: cameras }, api);
    assert.equal(r.ok, true, r.error);
    await sleep(800);
    return r.data!.trial_id as number;
  }

  it('stop queued before the device loss: the stop finalises the trial; the loss finds nothing to stop', async () => {
    const trialId = await startTrial(['cam0']);
    const from = t.statuses.length;
    const [stop, lost] = await Promise.all([
      t.box.handleCommand('stop_recording', {}, api),
      t.box.commands.raise('device_lost', { camera_id: 'cam0', message: 'camera device gone' }),
    ]);
    assert.equal(stop.ok, true, stop.error);
    assert.equal(lost.ok, true, lost.error);
    assert.deepEqual(lost.data!.recordings, [], 'nothing left to abort');
    const { state, recordings } = assertFinalised(trialId, from);
    assert.equal(state, 'complete');
    assert.equal(recordings[0]!.stop_reason, null);
    const err = t.statuses.slice(from).find((s) => s.status === 'device_error');
    assert.equal(err?.data.unplugged, true, 'the loss is still reported');
  });

  it('device loss queued before the stop: the trial ends interrupted with the camera; the stop is refused', async () => {
    const trialId = await startTrial(['cam0']);
    const from = t.statuses.length;
    const [lost, stop] = await Promise.all([
      t.box.commands.raise('device_lost', { camera_id: 'cam0', message: 'camera device gone' }),
      t.box.handleCommand('stop_recording', {}, api),
    ]);
    assert.equal(lost.ok, true, lost.error);
    assert.equal((lost.data!.recordings as unknown[]).length, 1);
    assert.equal(stop.ok, false);
    assert.equal(stop.code, 'conflict');
    assert.match(stop.error!, /not recording/);
    const { state, recordings } = assertFinalised(trialId, from);
    assert.equal(state, 'interrupted');
    assert.equal(recordings[0]!.stop_reason, 'camera unplugged');
  });

  it('two cameras, one lost, then the stop: the other camera records on; the trial is interrupted and lists both', async () => {
    const trialId = await startTrial(['cam0', 'cam1']);
    const from = t.statuses.length;
    const lost = await t.box.commands.raise('device_lost', { camera_id: 'cam1', message: 'camera device gone' });
    assert.equal(lost.ok, true, lost.error);
    assert.equal(t.box.status().recording, true, 'the trial goes on with cam0');
    assert.deepEqual(t.box.status().trial!.cameras, ['cam0']);
    await sleep(500);
    const stop = await t.box.handleCommand('stop_recording', {}, api);
    assert.equal(stop.ok, true, stop.error);
    const { state, recordings } = assertFinalised(trialId, from);
    assert.equal(state, 'interrupted');
    const byCam = Object.fromEntries(recordings.map((r) => [r.camera_id, r.state]));
    assert.deepEqual(byCam, { cam0: 'complete', cam1: 'interrupted' });
    const stopped = t.statuses.slice(from).find((s) => s.status === 'recording_stopped')!;
    assert.equal((stopped.data.recordings as unknown[]).length, 2, 'the stop reports both recordings');
  });

  it('internal commands cannot be sent by a transport, whatever source it claims; nothing changes', async () => {
    const trialId = await startTrial(['cam0']);
    const journalBefore = (t.db.prepare("SELECT COUNT(*) n FROM events WHERE kind = 'command' AND name = 'device_lost'").get() as { n: number }).n;
    for (const [cmd, payload] of [
      ['device_lost', { camera_id: 'cam0', message: 'x' }],
      ['recording_failed', { camera_id: 'cam0', message: 'x', code: 'internal' }],
      ['disk_full', { reason: 'disk full' }],
      ['segment_started', { camera_id: 'cam0', segment: 1, recording_id: 1, gap_us: null }],
      ['shutdown', {}],
    ] as const) {
      for (const source of ['api', 'serial', 'module', 'internal'] as const) {
        const r: CommandResult = await t.box.handleCommand(cmd, payload, { source });
        assert.equal(r.ok, false, `${cmd} from ${source}`);
        assert.equal(r.code, 'unknown_command', `${cmd} from ${source}: ${r.error}`);
      }
    }
    const status = t.box.status();
    assert.equal(status.recording, true, 'the trial still records');
    assert.equal(status.trial!.id, trialId);
    assert.equal((t.db.prepare("SELECT state FROM trials WHERE id = ?").get(trialId) as { state: string }).state, 'recording');
    const journalAfter = (t.db.prepare("SELECT COUNT(*) n FROM events WHERE kind = 'command' AND name = 'device_lost'").get() as { n: number }).n;
    assert.equal(journalAfter, journalBefore + 4, 'the refused attempts are journalled as such');
    const stop = await t.box.handleCommand('stop_recording', { reason: 'a user cannot give a stop a reason' }, api);
    assert.equal(stop.ok, true, stop.error);
    assert.equal(t.store.recordingsOfTrial(trialId)[0]!.stop_reason, null);
  });

  it('refusals carry typed codes', async () => {
    const cases: Array<[string, unknown, string]> = [
      ['launch_rockets', {}, 'unknown_command'],
      ['start_recording', { trial_number: 'three' }, 'invalid_payload'],
      ['start_recording', { camera_ids: ['nope'] }, 'not_found'],
      ['stop_recording', {}, 'conflict'],
      ['resume_recording', {}, 'conflict'],
      ['control_change', { camera_id: 'cam0', control: 'brightness', value: 1 }, 'conflict'],
      ['assign_device', { camera_id: 'ghost', descriptor: { device_path: '/dev/video-none' } }, 'unavailable'],
    ];
    for (const [cmd, payload, code] of cases) {
      const from = t.statuses.length;
      const r = await t.box.handleCommand(cmd, payload, api);
      assert.equal(r.code, code, `${cmd}: ${r.error}`);
      const err = t.statuses.slice(from).find((s) => s.status === 'error');
      assert.equal(err?.data.code, code, `${cmd}: the error status carries the code`);
    }
    const bad = await t.box.handleCommand('start_recording', { trial_number: 'three' }, api);
    assert.equal(bad.field, 'trial_number', 'an invalid payload names its field');
  });
});
