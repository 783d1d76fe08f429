import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SerialPortStream } from '@serialport/stream';
import { serialBinding } from '../../src/triggers/serial/hangup-safe-binding.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { monoNowUs } from '../../src/clock.ts';
import type { CommandContext, CommandHandler, CommandResult } from '../../src/runtime/command-types.ts';
import { SerialTrigger, type SerialTriggerEvents } from '../../src/triggers/serial/serial-trigger.ts';
import type { SerialConfigInput } from '../../src/triggers/serial/serial-config.ts';
import { startSocatPty, type SocatPty } from '../helpers/socat-pty.ts';

/** Stand-in for the runtime: records every call and answers like a minimal runtime would. */
class RecordingHandler implements CommandHandler {
  readonly calls: Array<{ command: string; payload: unknown; ctx: CommandContext }> = [];
  delayMs = 0;
  active = 0;
  maxActive = 0;
  readonly results = new Map<string, CommandResult>();
  readonly throwOn = new Set<string>();

  async handleCommand(command: string, payload: unknown, ctx: CommandContext): Promise<CommandResult> {
    this.calls.push({ command, payload, ctx });
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    try {
      if (this.delayMs > 0) await sleep(this.delayMs);
      if (this.throwOn.has(command)) throw new Error(`${command} exploded`);
      const canned = this.results.get(command);
      if (canned) return canned;
      if (command === 'start_recording') {
        const p = payload as { session_prefix?: string; trial_number?: number };
        return { ok: true, command, data: { session: p.session_prefix ?? 'session', trial: p.trial_number ?? 1 } };
      }
      return { ok: true, command };
    } finally {
      this.active--;
    }
  }
}

/** The lab-equipment side: the other end of the pty, opened through the real binding too. */
class PortClient {
  raw = Buffer.alloc(0);
  private partial = '';
  private readonly pending: string[] = [];
  private readonly waiters: Array<(line: string) => void> = [];
  readonly all: string[] = [];

  private constructor(readonly port: SerialPortStream) {
    port.on('data', (chunk: Buffer) => {
      this.raw = Buffer.concat([this.raw, chunk]);
      this.partial += chunk.toString('utf8');
      const parts = this.partial.split(/\r\n|\r|\n/);
      this.partial = parts.pop()!;
      for (const line of parts) {
        if (line === '') continue; // a \r\n split across chunks
        this.all.push(line);
        const waiter = this.waiters.shift();
        if (waiter) waiter(line);
        else this.pending.push(line);
      }
    });
  }

  static async open(path: string): Promise<PortClient> {
    const port = new SerialPortStream({ binding: serialBinding(), path, baudRate: 115200, autoOpen: false });
    port.on('error', () => {});
    await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
    return new PortClient(port);
  }

  async write(data: string | Buffer): Promise<void> {
    this.port.write(data);
    await new Promise<void>((resolve) => this.port.drain(() => resolve()));
  }

  nextLine(timeoutMs = 3000): Promise<string> {
    const ready = this.pending.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    return new Promise((resolve, reject) => {
      const waiter = (line: string): void => {
        clearTimeout(timer);
        resolve(line);
      };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new Error(`no answer within ${timeoutMs} ms; answers so far: ${JSON.stringify(this.all)}`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  async lines(n: number): Promise<string[]> {
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push(await this.nextLine());
    return out;
  }

  async request(line: string): Promise<string> {
    await this.write(`${line}\r\n`);
    return this.nextLine();
  }

  /** Waits a little and checks that nothing more was answered. */
  async assertNoMoreLines(ms = 250): Promise<void> {
    await sleep(ms);
    assert.deepEqual(this.pending, [], 'unexpected extra answers');
  }

  async close(): Promise<void> {
    if (this.port.isOpen) await new Promise<void>((resolve) => this.port.close(() => resolve()));
  }
}

interface Rig {
  dir: string;
  pty: SocatPty;
  trigger: SerialTrigger;
  handler: RecordingHandler;
  client: PortClient;
  events: Array<{ name: keyof SerialTriggerEvents; payload: unknown }>;
  teardown(): Promise<void>;
}

function recordEvents(trigger: SerialTrigger): Rig['events'] {
  const events: Rig['events'] = [];
  for (const name of ['serial_connected', 'serial_disconnected', 'serial_error'] as const) {
    trigger.on(name, (payload: unknown) => events.push({ name, payload }));
  }
  return events;
}

async function startRig(config: Partial<SerialConfigInput> = {}): Promise<Rig> {
  const dir = await mkdtemp(join(tmpdir(), 'rigcam-serial-'));
  const pty = await startSocatPty(join(dir, 'a'), join(dir, 'b'));
  const handler = new RecordingHandler();
  const trigger = new SerialTrigger({
    config: { enabled: true, path: pty.linkA, baud: 115200, max_lines_per_second: 500, ...config },
    handler,
    logger: silentLogger(),
  });
  const events = recordEvents(trigger);
  const connected = once(trigger, 'serial_connected');
  trigger.start();
  await connected;
  const client = await PortClient.open(pty.linkB);
  const rig: Rig = {
    dir,
    pty,
    trigger,
    handler,
    client,
    events,
    // Reads the fields at teardown time: a test may have replaced the pty and client (re-plug).
    async teardown() {
      await rig.trigger.stop();
      await rig.client.close();
      await rig.pty.kill();
      await rm(rig.dir, { recursive: true, force: true });
    },
  };
  return rig;
}

/** Resolves with the next event of that name, or fails after timeoutMs. */
function nextEvent<K extends keyof SerialTriggerEvents>(trigger: SerialTrigger, name: K, timeoutMs = 5000): Promise<SerialTriggerEvents[K][0]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${name} within ${timeoutMs} ms`)), timeoutMs);
    trigger.once(name, ((payload: SerialTriggerEvents[K][0]) => {
      clearTimeout(timer);
      resolve(payload);
    }) as never);
  });
}

describe('SerialTrigger over a socat pty pair', { timeout: 30_000 }, () => {
  let rig: Rig;
  before(async () => {
    rig = await startRig();
  });
  after(async () => {
    await rig.teardown();
  });

  it('answers PING without calling the handler', async () => {
    const before = rig.handler.calls.length;
    assert.equal(await rig.client.request('PING'), 'OK PONG');
    assert.equal(rig.handler.calls.length, before);
  });

  it('maps every text command to the handler, tagged serial with a trigger time', async () => {
    const cases: Array<[string, string, string, Record<string, unknown>]> = [
      ['START', 'OK START session=session trial=1', 'start_recording', {}],
      ['START mouse-12', 'OK START session=mouse-12 trial=1', 'start_recording', { session_prefix: 'mouse-12' }],
      ['START mouse-12 7', 'OK START session=mouse-12 trial=7', 'start_recording', { session_prefix: 'mouse-12', trial_number: 7 }],
      ['STOP', 'OK STOP', 'stop_recording', {}],
      ['PAUSE', 'OK PAUSE', 'pause_recording', {}],
      ['RESUME', 'OK RESUME', 'resume_recording', {}],
      ['MARK lever press', 'OK MARK', 'mark', { label: 'lever press' }],
    ];
    for (const [line, answer, command, payload] of cases) {
      const t0 = monoNowUs();
      assert.equal(await rig.client.request(line), answer, line);
      const call = rig.handler.calls.at(-1)!;
      assert.equal(call.command, command, line);
      assert.deepEqual(call.payload, payload, line);
      assert.equal(call.ctx.source, 'serial');
      assert.ok(call.ctx.triggerMonoUs! >= t0 && call.ctx.triggerMonoUs! <= monoNowUs(), line);
    }
  });

  it('answers STATUS with a one-line summary of the status data', async () => {
    rig.handler.results.set('get_status', {
      ok: true,
      command: 'get_status',
      data: { recording: true, session: 'mouse-12', trial: 3, cameras: [{ id: 'cam0' }, { id: 'cam1' }] },
    });
    assert.equal(await rig.client.request('STATUS'), 'OK STATUS recording=true session=mouse-12 trial=3 cameras=2');
    assert.equal(rig.handler.calls.at(-1)!.command, 'get_status');
    rig.handler.results.delete('get_status');
  });

  it('answers a failed command with ERR and its reason', async () => {
    rig.handler.results.set('stop_recording', { ok: false, command: 'stop_recording', error: 'not recording' });
    assert.equal(await rig.client.request('STOP'), 'ERR not recording');
    rig.handler.results.delete('stop_recording');
  });

  it('still answers, in order, when the handler throws', async () => {
    rig.handler.throwOn.add('mark');
    await rig.client.write('MARK a\r\n{"command":"mark","payload":{"label":"b"}}\r\nPING\r\n');
    const [text, json, ping] = await rig.client.lines(3);
    assert.equal(text, 'ERR internal error: mark exploded');
    assert.deepEqual(JSON.parse(json!), { ok: false, command: 'mark', error: 'internal error: mark exploded' });
    assert.equal(ping, 'OK PONG');
    rig.handler.throwOn.delete('mark');
  });

  it('accepts any case and \\r, \\n or \\r\\n line ends, also split across writes', async () => {
    const n = rig.handler.calls.length;
    await rig.client.write('ping\rPiNg\n  Ping  \r\nstop\r');
    await rig.client.write('\nSt');
    await sleep(50);
    await rig.client.write('Op\n');
    assert.deepEqual(await rig.client.lines(5), ['OK PONG', 'OK PONG', 'OK PONG', 'OK STOP', 'OK STOP']);
    assert.deepEqual(rig.handler.calls.slice(n).map((c) => c.command), ['stop_recording', 'stop_recording']);
    await rig.client.assertNoMoreLines();
  });

  it('refuses bad text arguments with ERR and does nothing else', async () => {
    const n = rig.handler.calls.length;
    const answers: string[] = [];
    for (const line of ['START ../../etc', 'START s 0', 'START s 2.5', 'START a 1 2', 'STOP now', 'MARK', 'FIRE']) {
      answers.push(await rig.client.request(line));
    }
    assert.ok(answers.every((a) => a.startsWith('ERR ')), JSON.stringify(answers));
    assert.match(answers[0]!, /session/);
    assert.match(answers[1]!, /trial/);
    assert.equal(answers[6], 'ERR unknown command FIRE');
    assert.equal(rig.handler.calls.length, n);
  });

  it('carries JSON lines to the handler and answers with the JSON result', async () => {
    const line = JSON.stringify({ command: 'start_recording', payload: { session_prefix: 'js', trial_number: 4 } });
    const t0 = monoNowUs();
    const answer = JSON.parse(await rig.client.request(line));
    assert.deepEqual(answer, { ok: true, command: 'start_recording', data: { session: 'js', trial: 4 } });
    const call = rig.handler.calls.at(-1)!;
    assert.equal(call.command, 'start_recording');
    assert.deepEqual(call.payload, { session_prefix: 'js', trial_number: 4 });
    assert.equal(call.ctx.source, 'serial');
    assert.ok(call.ctx.triggerMonoUs! >= t0);

    assert.deepEqual(JSON.parse(await rig.client.request('{"command":"unassign_device"}')), { ok: true, command: 'unassign_device' });
    assert.deepEqual(rig.handler.calls.at(-1)!.payload, {});
  });

  it('refuses bad JSON lines with ERR and does nothing else', async () => {
    const n = rig.handler.calls.length;
    for (const line of ['{"command":', '{"command":5}', '{"command":"x","payload":[1]}', '{"command":"x","id":1}']) {
      assert.match(await rig.client.request(line), /^ERR (invalid JSON|bad JSON command)/, line);
    }
    assert.equal(rig.handler.calls.length, n);
  });

  it('answers binary garbage with ERR and keeps working', async () => {
    const n = rig.handler.calls.length;
    await rig.client.write(Buffer.from([0x00, 0xff, 0xfe, 0x1b, 0x5b, 0x41, 0x80, 0x0a]));
    assert.equal(await rig.client.nextLine(), 'ERR binary data');
    assert.equal(await rig.client.request('PING'), 'OK PONG');
    assert.equal(rig.handler.calls.length, n);
  });

  it('answers an over-long line once and discards it up to the line end', async () => {
    const n = rig.handler.calls.length;
    // Starts like a real command: nothing of it may be executed.
    await rig.client.write(`START ${'x'.repeat(2000)}`);
    await rig.client.write(`${'y'.repeat(2000)}\r\nPING\r\n`);
    assert.deepEqual(await rig.client.lines(2), ['ERR line too long', 'OK PONG']);
    await rig.client.assertNoMoreLines();
    assert.equal(rig.handler.calls.length, n);
  });

  it('stamps a command with the arrival of its first byte, not of its line end', async () => {
    const t0 = monoNowUs();
    await rig.client.write('S');
    await sleep(200);
    const t1 = monoNowUs();
    await rig.client.write('TART late 2\r\n');
    assert.equal(await rig.client.nextLine(), 'OK START session=late trial=2');
    const stamp = rig.handler.calls.at(-1)!.ctx.triggerMonoUs!;
    assert.ok(stamp >= t0, 'stamped before the first byte was sent');
    assert.ok(stamp < t1, `stamped ${t1 - stamp} us before the line end was sent: expected the first byte's time`);
    assert.ok(t1 - stamp > 150_000, 'the first byte arrived about 200 ms before the rest');
  });

  it('executes commands one at a time, answering in the order received', async () => {
    rig.handler.delayMs = 60;
    const n = rig.handler.calls.length;
    rig.handler.maxActive = 0;
    await rig.client.write('START a 1\r\nPING\r\nMARK m\r\nBOGUS\r\nSTOP\r\n');
    assert.deepEqual(await rig.client.lines(5), ['OK START session=a trial=1', 'OK PONG', 'OK MARK', 'ERR unknown command BOGUS', 'OK STOP']);
    assert.equal(rig.handler.maxActive, 1);
    assert.deepEqual(rig.handler.calls.slice(n).map((c) => c.command), ['start_recording', 'mark', 'stop_recording']);
    rig.handler.delayMs = 0;
  });

  it('ends its answers with the configured line ending', async () => {
    const from = rig.client.raw.length;
    await rig.client.request('PING');
    assert.equal(rig.client.raw.subarray(from).toString('latin1'), 'OK PONG\r\n');
  });
});

describe('SerialTrigger limits', { timeout: 30_000 }, () => {
  it('refuses a flood beyond max_lines_per_second with a single ERR busy', async () => {
    const rig = await startRig({ max_lines_per_second: 10 });
    try {
      const flood = Array.from({ length: 50 }, (_, i) => `MARK f${i}\n`).join('');
      await rig.client.write(flood);
      const answers = await rig.client.lines(11);
      assert.deepEqual(answers, [...Array(10).fill('OK MARK'), 'ERR busy']);
      await rig.client.assertNoMoreLines(300);
      assert.deepEqual(
        rig.handler.calls.map((c) => (c.payload as { label: string }).label),
        Array.from({ length: 10 }, (_, i) => `f${i}`),
      );
      await sleep(1000); // the window slides past the flood
      assert.equal(await rig.client.request('PING'), 'OK PONG');
    } finally {
      await rig.teardown();
    }
  });

  it('bounds the queue behind a slow command: the excess gets one ERR busy', async () => {
    const rig = await startRig({ max_pending: 2 });
    try {
      rig.handler.delayMs = 150;
      await rig.client.write('MARK 1\nMARK 2\nMARK 3\nMARK 4\nMARK 5\nMARK 6\n');
      // One executing, two waiting, the fourth refused with notice, the rest dropped.
      assert.deepEqual(await rig.client.lines(4), ['OK MARK', 'OK MARK', 'OK MARK', 'ERR busy']);
      await rig.client.assertNoMoreLines(400);
      assert.deepEqual(rig.handler.calls.map((c) => (c.payload as { label: string }).label), ['1', '2', '3']);
    } finally {
      await rig.teardown();
    }
  });

  it('uses line_ending for its answers', async () => {
    const rig = await startRig({ line_ending: '\n' });
    try {
      await rig.client.write('PING\r\n');
      await rig.client.nextLine();
      assert.equal(rig.client.raw.toString('latin1'), 'OK PONG\n');
    } finally {
      await rig.teardown();
    }
  });
});

describe('SerialTrigger connection life', { timeout: 30_000 }, () => {
  it('survives an unplug: reports it, retries with back-off, reopens the same path', async () => {
    const rig = await startRig({ reconnect_min_ms: 100, reconnect_max_ms: 400 });
    try {
      assert.equal(await rig.client.request('PING'), 'OK PONG');
      assert.equal(rig.trigger.connected, true);

      const disconnected = nextEvent(rig.trigger, 'serial_disconnected');
      await rig.pty.kill(); // both ptys vanish, like a pulled USB adapter
      const gone = await disconnected;
      assert.equal(gone.path, rig.pty.linkA);
      assert.equal(rig.trigger.connected, false);

      // While absent, reopen attempts fail and are reported once, not once per attempt.
      await sleep(900);
      const errors = rig.events.filter((e) => e.name === 'serial_error');
      assert.equal(errors.length, 1, JSON.stringify(rig.events));
      assert.equal((errors[0]!.payload as { path: string }).path, rig.pty.linkA);

      const reconnected = nextEvent(rig.trigger, 'serial_connected');
      rig.pty = await startSocatPty(rig.pty.linkA, rig.pty.linkB);
      await reconnected;
      assert.equal(rig.trigger.connected, true);
      rig.client = await PortClient.open(rig.pty.linkB);

      assert.equal(await rig.client.request('PING'), 'OK PONG');
      assert.equal(await rig.client.request('START back 9'), 'OK START session=back trial=9');
      assert.deepEqual(rig.handler.calls.at(-1)!.payload, { session_prefix: 'back', trial_number: 9 });
      assert.deepEqual(
        rig.events.map((e) => e.name),
        ['serial_connected', 'serial_disconnected', 'serial_error', 'serial_connected'],
      );
    } finally {
      await rig.teardown();
    }
  });

  it('waits for a port that is not there yet, then opens it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rigcam-serial-'));
    const trigger = new SerialTrigger({
      config: { enabled: true, path: join(dir, 'a'), reconnect_min_ms: 50, reconnect_max_ms: 200 },
      handler: new RecordingHandler(),
      logger: silentLogger(),
    });
    let pty: SocatPty | null = null;
    try {
      const failed = nextEvent(trigger, 'serial_error');
      trigger.start();
      assert.match((await failed).error, /no such file|ENOENT|cannot open/i);
      assert.equal(trigger.connected, false);
      const connected = nextEvent(trigger, 'serial_connected');
      pty = await startSocatPty(join(dir, 'a'), join(dir, 'b'));
      await connected;
      const client = await PortClient.open(pty.linkB);
      assert.equal(await client.request('PING'), 'OK PONG');
      await client.close();
    } finally {
      await trigger.stop();
      await pty?.kill();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('stop() closes the port and releases its lock', async () => {
    const rig = await startRig();
    try {
      const disconnected = nextEvent(rig.trigger, 'serial_disconnected');
      await rig.trigger.stop();
      assert.deepEqual(await disconnected, { path: rig.pty.linkA, reason: 'stopped' });
      assert.equal(rig.trigger.connected, false);
      // The real binding takes an exclusive lock: opening succeeds only if rigcam let go.
      const other = await PortClient.open(rig.pty.linkA);
      await other.close();
      // Nothing answers any more.
      await rig.client.write('PING\r\n');
      await rig.client.assertNoMoreLines(300);
    } finally {
      await rig.teardown();
    }
  });

  it('does nothing when disabled', async () => {
    const trigger = new SerialTrigger({ config: { enabled: false }, handler: new RecordingHandler(), logger: silentLogger() });
    const events = recordEvents(trigger);
    trigger.start();
    await sleep(100);
    await trigger.stop();
    assert.deepEqual(events, []);
  });
});
