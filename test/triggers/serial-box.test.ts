import assert from 'node:assert/strict';
import { SerialPortStream } from '@serialport/stream';
import path from 'node:path';
import { serialBinding } from '../../src/triggers/serial/hangup-safe-binding.ts';
import { after, before, describe, it } from 'node:test';
import { SerialTrigger } from '../../src/triggers/serial/index.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { framesCsvChunks } from '../../src/api/frames-csv.ts';
import { moduleName } from '../../src/timing/csv-format.ts';
import { startSocatPty, type SocatPty } from '../helpers/socat-pty.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { ffprobeCount, sleep, startTestBox, type TestBox } from '../runtime/runtime-helpers.ts';

// The serial trigger driving the real box over a real pty pair: the lab's controller is the other end.
describe('serial trigger → box: a trial started, marked and stopped from a serial line', () => {
  let t: TestBox;
  let pty: SocatPty;
  let serial: SerialTrigger;
  const replies: string[] = [];
  let controller: SerialPortStream;

  before(async () => {
    const dir = tmpDir();
    pty = await startSocatPty(path.join(dir, 'rigcam'), path.join(dir, 'controller'));
    t = await startTestBox({ cameras: 1 });
    serial = new SerialTrigger({ config: { enabled: true, path: pty.linkA, baud: 115200 }, handler: t.box, logger: silentLogger() });
    const connected = new Promise((r) => serial.once('serial_connected', r));
    serial.start();
    await connected;
    // The lab controller's end, through the same real binding.
    controller = new SerialPortStream({ binding: serialBinding(), path: pty.linkB, baudRate: 115200, autoOpen: false });
    controller.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => controller.open((err) => (err ? reject(err) : resolve())));
    let partial = '';
    controller.on('data', (chunk: Buffer) => {
      const parts = (partial + chunk.toString('utf8')).split(/\r\n|\r|\n/);
      partial = parts.pop()!;
      for (const l of parts) if (l) replies.push(l.trim());
    });
  });
  after(async () => {
    await serial.stop();
    await new Promise<void>((r) => controller.close(() => r()));
    await pty.kill();
    await t.close();
  });

  async function send(line: string): Promise<string> {
    const n = replies.length;
    controller.write(`${line}\r\n`);
    const deadline = Date.now() + 10_000;
    while (replies.length === n) {
      if (Date.now() > deadline) throw new Error(`no reply to ${line}`);
      await sleep(20);
    }
    return replies[n]!;
  }

  it('START, MARK, STOP: the trial is recorded with its serial trigger and the marker lands between the right frames', async () => {
    assert.match(await send('PING'), /^OK PONG/);
    assert.match(await send('start lab1 4'), /^OK/);
    await sleep(1200);
    const before = Number(process.hrtime.bigint() / 1000n);
    assert.match(await send('MARK reward'), /^OK/);
    const after = Number(process.hrtime.bigint() / 1000n);
    await sleep(800);
    assert.match(await send('STATUS'), /^OK .*recording=true/);
    assert.match(await send('STOP'), /^OK/);
    assert.equal(await send('STOP'), 'ERR conflict not recording', 'a refusal of the box: ERR, its code, its reason');
    assert.match(await send('FLY away'), /^ERR/);

    const trial = t.db.prepare("SELECT * FROM trials WHERE number = 4").get() as { id: number; trigger_source: string; state: string };
    assert.equal(trial.trigger_source, 'serial');
    assert.equal(trial.state, 'complete');
    const rec = t.store.recordingsOfTrial(trial.id)[0]!;
    assert.equal(rec.trigger_source, 'serial');
    assert.equal(ffprobeCount(path.join(t.root, rec.path)), rec.frame_count);
    const marker = t.db.prepare("SELECT name, mono_us, source FROM events WHERE kind = 'marker'").get() as { name: string; mono_us: number; source: string };
    assert.equal(marker.source, 'serial');
    assert.ok(marker.mono_us >= before - 50_000 && marker.mono_us <= after, 'marker time is the arrival of its line');
    const csv = [...framesCsvChunks(t.store, rec.id, { trial: 4, module: moduleName('test'), deviceId: rec.camera_id, label: '' }, [marker])].join('');
    const lines = csv.trim().split('\n');
    const at = lines.findIndex((l) => l.endsWith(',reward'));
    assert.ok(at > 1, 'marker on a frame line');
    const mono = (l: string): number => Number(l.split(',')[5]) * 1e6;
    assert.ok(mono(lines[at]!) >= marker.mono_us - 1 && mono(lines[at - 1]!) < marker.mono_us, 'between the previous frame and this one');
  });

  it('a JSON line with a misspelt payload key is refused naming it and changes nothing; an over-long line is refused and the port goes on', async () => {
    const trials = (): number => (t.db.prepare('SELECT COUNT(*) n FROM trials').get() as { n: number }).n;
    const before = trials();
    const typo = JSON.parse(await send('{"command": "start_recording", "payload": {"sesion": "typo"}}')) as Record<string, unknown>;
    assert.equal(typo.ok, false);
    assert.equal(typo.code, 'invalid_payload');
    assert.equal(typo.field, 'sesion');
    assert.match(String(typo.error), /unknown key "sesion"/);
    const lable = JSON.parse(await send('{"command": "mark", "payload": {"label": "x", "lable": "y"}}')) as Record<string, unknown>;
    assert.equal(lable.field, 'lable');
    assert.equal(trials(), before, 'no trial started by the misspelt key');
    assert.equal(t.box.status().recording, false);
    // 64 KB on one line (the port's limit is max_line_bytes, 512 by default): one refusal, then the next line works.
    assert.equal(await send(`{"command": "mark", "payload": {"label": "${'x'.repeat(64 * 1024)}"}}`), 'ERR line too long');
    assert.match(await send('PING'), /^OK PONG/);
  });
});
