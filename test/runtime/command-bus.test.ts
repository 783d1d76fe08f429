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
    const withReason = await t.box.handleCommand('stop_recording', { reason: 'a user cannot give a stop a reason' }, api);
    assert.equal(withReason.code, 'invalid_payload', 'a stop takes no reason from a transport: refused, not stripped');
    assert.equal(withReason.field, 'reason');
    assert.equal(t.box.status().recording, true, 'the refused stop stopped nothing');
    const stop = await t.box.handleCommand('stop_recording', {}, api);
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

  it('every command payload is strict: an unknown or misspelt key is refused naming it, and changes nothing', async () => {
    const count = (sql: string): number => (t.db.prepare(sql).get() as { n: number }).n;
    const snapshot = (): string =>
      JSON.stringify({
        trials: count('SELECT COUNT(*) n FROM trials'),
        sessions: t.db.prepare('SELECT name, stopped_at IS NULL AS open FROM sessions ORDER BY id').all(),
        markers: count("SELECT COUNT(*) n FROM events WHERE kind = 'marker'"),
        recording: t.box.status().recording,
        paused: t.box.status().paused,
        cameras: [...t.box.cameras.values()].map((c) => [c.id, c.state, c.config.armed]),
      });
    /** Each transport command with a payload that would run but for one wrong key. */
    const idle: Array<[string, Record<string, unknown>, string]> = [
      ['start_recording', { session_prefix: 'typo', sesion: 'typo' }, 'sesion'],
      ['start_recording', { lable: 'baseline' }, 'lable'],
      ['record', { trial_number: 7, trail: 8 }, 'trail'],
      ['start_session', { session_id: 'typo2', sesion_id: 'typo2' }, 'sesion_id'],
      ['stop_session', { now: true }, 'now'],
      ['get_status', { verbose: true }, 'verbose'],
      ['status', { all: 1 }, 'all'],
      ['reprobe', { camera_id: 'cam1', force: true }, 'force'],
      ['unassign_device', { camera_id: 'cam1', forced: true }, 'forced'],
      ['unassign_all_devices', { all: true }, 'all'],
      ['control_change', { camera_id: 'cam1', control: 'brightness', value: 1, camra_id: 'cam0' }, 'camra_id'],
      ['assign_device', { camera_id: 'cam1', descriptor: { device_path: '/dev/null' }, devise_path: '/dev/null' }, 'devise_path'],
      ['apply_config', { camera_id: 'cam1', fsp: 15 }, 'fsp'],
    ];
    const before = snapshot();
    for (const [cmd, payload, key] of idle) {
      const r = await t.box.handleCommand(cmd, payload, api);
      assert.equal(r.code, 'invalid_payload', `${cmd} ${JSON.stringify(payload)}: ${r.error}`);
      assert.equal(r.field, key, `${cmd}: the refusal names the key`);
      assert.match(r.error!, new RegExp(`unknown key "${key}"`), `${cmd}: the message names the key`);
    }
    assert.equal(snapshot(), before, 'nothing changed while idle');
    assert.equal(count("SELECT COUNT(*) n FROM sessions WHERE name LIKE 'typo%'"), 0, 'no session from a misspelt start');

    const trialId = await startTrial(['cam0']);
    const recording: Array<[string, Record<string, unknown>, string]> = [
      ['mark', { label: 'reward', lable: 'reward' }, 'lable'],
      ['marker', { lable: 'reward' }, 'lable'],
      ['stop_recording', { at_mono_us_: 1 }, 'at_mono_us_'],
      ['stop', { reason: 'x' }, 'reason'],
      ['pause_recording', { at_mono: 5 }, 'at_mono'],
      ['pause', { x: 1 }, 'x'],
      ['start_recording', { session_prefix: 'race', sesion: 'race' }, 'sesion'],
      ['resume_recording', { at_mono_us: 5 }, 'at_mono_us'],
    ];
    const during = snapshot();
    for (const [cmd, payload, key] of recording) {
      const r = await t.box.handleCommand(cmd, payload, api);
      assert.equal(r.code, 'invalid_payload', `${cmd} ${JSON.stringify(payload)}: ${r.error}`);
      assert.equal(r.field, key, `${cmd}: the refusal names the key`);
    }
    assert.equal(snapshot(), during, 'nothing changed while recording');
    assert.equal(t.box.status().trial!.id, trialId);

    // Hostile sizes and shapes: refused quickly with a short message, never a crash.
    const deep: Record<string, unknown> = {};
    let cur = deep;
    for (let i = 0; i < 20_000; i++) cur = (cur.a = {}) as Record<string, unknown>;
    const manyKeys = Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`k${i}`.padEnd(200, 'x'), i]));
    const hostile: Array<[string, Record<string, unknown>, string]> = [
      ['mark', { label: 'x'.repeat(1_000_000) }, 'label'],
      ['mark', { label: 'ok', metadata: deep }, 'metadata'],
      ['start_recording', { metadata: { nested: deep } }, 'metadata.nested'],
      ['mark', manyKeys, 'label'],
    ];
    for (const [cmd, payload, key] of hostile) {
      const t0 = performance.now();
      const r = await t.box.handleCommand(cmd, payload, api);
      const ms = performance.now() - t0;
      assert.equal(r.code, 'invalid_payload', `${cmd}: ${r.error?.slice(0, 200)}`);
      assert.ok(r.field?.startsWith(key) || r.error!.includes(key), `${cmd}: names ${key}: ${r.field} ${r.error?.slice(0, 200)}`);
      assert.ok(r.error!.length <= 500, `a short refusal (${r.error!.length} chars)`);
      assert.ok(ms < 500, `refused in ${ms.toFixed(0)} ms`);
    }
    assert.equal(snapshot(), during, 'nothing changed by hostile payloads');
    const journalled = t.db.prepare("SELECT payload FROM events WHERE kind = 'command' AND name = 'mark' ORDER BY id DESC LIMIT 3").all() as Array<{ payload: string }>;
    for (const j of journalled) assert.ok(j.payload.length <= 8 * 1024 + 100, `the journal keeps a bounded payload (${j.payload.length})`);
    assert.match(journalled[1]!.payload, /too deeply nested/, 'the nested payload is noted, not lost silently');

    const stop = await t.box.handleCommand('stop_recording', {}, api);
    assert.equal(stop.ok, true, stop.error);
  });
});
