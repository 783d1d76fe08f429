import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { HTTP_STATUS_OF_CODE } from '../../src/api/http-error.ts';
import { ERROR_CODES, type ErrorCode } from '../../src/runtime/errors.ts';
import { startHttpBox, type HttpBox } from '../helpers/box.ts';

type Answer = { ok: boolean; code?: ErrorCode; error?: string; field?: string };

/**
 * Every refusal code of the runtime, provoked for real over HTTP, answers with the status of the one code → status
 * table and carries its code. A code added without a scenario here fails the last test.
 */
describe('HTTP status of every runtime error code', () => {
  const seen = new Map<ErrorCode, number>();
  const boxes: HttpBox[] = [];
  after(async () => {
    for (const b of boxes) await b.close();
  });

  async function expectCode(b: HttpBox, p: string, json: unknown, code: ErrorCode): Promise<Answer> {
    const r = await b.api(p, { json });
    const body = (await r.json()) as Answer;
    assert.equal(body.ok, false, `${p} ${JSON.stringify(json)}: refused`);
    assert.equal(body.code, code, `${p} ${JSON.stringify(json)}: ${body.error}`);
    assert.equal(r.status, HTTP_STATUS_OF_CODE[code], `${code}: HTTP ${r.status}`);
    seen.set(code, r.status);
    return body;
  }

  it('the table gives every code a 4xx or 5xx, and the expected ones', () => {
    for (const code of ERROR_CODES) {
      const s = HTTP_STATUS_OF_CODE[code];
      assert.ok(Number.isInteger(s) && s >= 400 && s < 600, `${code}: ${s}`);
    }
    assert.deepEqual(Object.keys(HTTP_STATUS_OF_CODE).sort(), [...ERROR_CODES].sort(), 'no status for a code that does not exist');
    assert.equal(HTTP_STATUS_OF_CODE.invalid_payload, 400);
    assert.equal(HTTP_STATUS_OF_CODE.not_found, 404);
    assert.equal(HTTP_STATUS_OF_CODE.conflict, 409);
    assert.equal(HTTP_STATUS_OF_CODE.internal, 500);
  });

  it('each code from a real refusal', async () => {
    const b = await startHttpBox({ cameras: 2 });
    boxes.push(b);
    const bad = await expectCode(b, '/api/commands', { command: 'start_recording', payload: { trial_number: 'three' } }, 'invalid_payload');
    assert.equal(bad.field, 'body.payload.trial_number', 'the field is named');
    await expectCode(b, '/api/trials/start', { cameras: ['nope'] }, 'not_found');
    await expectCode(b, '/api/trials/stop', {}, 'conflict');
    await expectCode(b, '/api/commands', { command: 'assign_device', payload: { camera_id: 'ghost', descriptor: { device_path: '/dev/video-not-there' } } }, 'unavailable');
    const un = await b.api('/api/commands', { json: { command: 'unassign_device', payload: { camera_id: 'cam1' } } });
    assert.equal(un.status, 200);
    await expectCode(b, '/api/trials/start', { cameras: ['cam1'] }, 'busy');
    // The runtime's own unknown_command (a command name the route let through cannot exist, so ask the box).
    const unknown = await b.box.handleCommand('launch_rockets', {}, { source: 'api' });
    assert.equal(unknown.code, 'unknown_command');
    seen.set('unknown_command', HTTP_STATUS_OF_CODE.unknown_command);
    // Over HTTP an unknown or internal command is refused before it reaches the queue, with the same status.
    for (const command of ['launch_rockets', 'device_lost', 'shutdown']) {
      const r = await b.api('/api/commands', { json: { command, payload: {} } });
      assert.equal(r.status, HTTP_STATUS_OF_CODE.unknown_command, command);
      assert.equal(((await r.json()) as { field?: string }).field, 'body.command');
    }
    assert.equal(b.box.status().recording, false, 'nothing started');
    // A fault of rigcam itself: the database went away under a marker.
    b.db.close();
    await expectCode(b, '/api/markers', { label: 'after the database closed' }, 'internal');
    await b.box.shutdown();
    await expectCode(b, '/api/markers', { label: 'too late' }, 'shutting_down');
  });

  it('disk_full: a start below min_free_to_start', async () => {
    const b = await startHttpBox({ extra: { disk: { min_free_to_start: '99.9%', warn_free: 0, stop_free: 0 } } });
    boxes.push(b);
    const r = await expectCode(b, '/api/trials/start', {}, 'disk_full');
    assert.match(r.error!, /not enough free disk/);
    assert.equal(b.box.status().recording, false);
  });

  it('every code was provoked', () => {
    assert.deepEqual([...seen.keys()].sort(), [...ERROR_CODES].sort());
  });
});
