import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseSerialLine } from '../../src/triggers/serial/command-line.ts';
import { errLine, jsonReply, summarizeData, textReply } from '../../src/triggers/serial/reply-format.ts';
import { serialConfigSchema } from '../../src/triggers/serial/serial-config.ts';

describe('parseSerialLine: text commands', () => {
  it('maps every verb, case-insensitively, to the runtime command', () => {
    const cases: Array<[string, string, Record<string, unknown>]> = [
      ['START', 'start_recording', {}],
      ['start mouse-12', 'start_recording', { session_prefix: 'mouse-12' }],
      ['Start Mouse_12.b 7', 'start_recording', { session_prefix: 'Mouse_12.b', trial_number: 7 }],
      ['stop', 'stop_recording', {}],
      ['Pause', 'pause_recording', {}],
      ['rEsUmE', 'resume_recording', {}],
      ['mark  lever press  left', 'mark', { label: 'lever press  left' }],
      ['STATUS', 'get_status', {}],
      ['  status\t', 'get_status', {}],
    ];
    for (const [line, command, payload] of cases) {
      const req = parseSerialLine(line);
      assert.equal(req.kind, 'command', line);
      assert.ok(req.kind === 'command');
      assert.equal(req.command, command, line);
      assert.deepEqual(req.payload, payload, line);
      assert.equal(req.format, 'text');
    }
    assert.deepEqual(parseSerialLine('ping'), { kind: 'ping' });
  });

  it('refuses bad arguments with a reason', () => {
    const bad: Array<[string, RegExp]> = [
      ['START ../etc', /session/],
      ['START ..', /session/],
      ['START .hidden', /session/],
      ['START a/b', /session/],
      [`START ${'s'.repeat(65)}`, /session/],
      ['START s 0', /trial/],
      ['START s -1', /trial/],
      ['START s 1.5', /trial/],
      ['START s 01', /trial/],
      ['START s 9999999999', /trial/],
      ['START a 1 extra', /usage/],
      ['STOP now', /no arguments/],
      ['PING x', /no arguments/],
      ['MARK', /label/],
      [`MARK ${'x'.repeat(201)}`, /label/],
      ['JUMP', /unknown command JUMP/],
    ];
    for (const [line, reason] of bad) {
      const req = parseSerialLine(line);
      assert.equal(req.kind, 'invalid', line);
      assert.ok(req.kind === 'invalid');
      assert.match(req.reason, reason, line);
    }
  });
});

describe('parseSerialLine: JSON lines', () => {
  it('passes the seed protocol through', () => {
    assert.deepEqual(parseSerialLine('{"command":"record","payload":{"session_prefix":"s","trial_number":2}}'), {
      kind: 'command',
      format: 'json',
      command: 'record',
      payload: { session_prefix: 's', trial_number: 2 },
    });
    assert.deepEqual(parseSerialLine(' {"command": "stop_recording"} '), {
      kind: 'command',
      format: 'json',
      command: 'stop_recording',
      payload: {},
    });
  });

  it('refuses malformed JSON and malformed envelopes', () => {
    for (const line of [
      '{"command":',
      '{}',
      '{"command":5}',
      '{"command":""}',
      '{"command":"a b"}',
      '{"command":"x","payload":[1]}',
      '{"command":"x","payload":"p"}',
      '{"command":"x","extra":1}',
    ]) {
      const req = parseSerialLine(line);
      assert.equal(req.kind, 'invalid', line);
      assert.ok(req.kind === 'invalid');
      assert.match(req.reason, /JSON/, line);
    }
  });
});

describe('reply formatting', () => {
  it('answers text commands with OK VERB and a compact summary', () => {
    assert.equal(textReply('STOP', { ok: true, command: 'stop_recording' }), 'OK STOP');
    assert.equal(
      textReply('STATUS', {
        ok: true,
        command: 'get_status',
        data: { recording: true, session: 'mouse 12', trial: 3, cameras: [{}, {}], disk: { free_mb: 900, warn: false }, none: null },
      }),
      'OK STATUS recording=true session=mouse_12 trial=3 cameras=2 disk.free_mb=900 disk.warn=false',
    );
    assert.equal(textReply('START', { ok: false, command: 'start_recording', error: 'no camera\narmed' }), 'ERR no camera armed');
    assert.equal(textReply('START', { ok: false, command: 'start_recording', code: 'disk_full', error: 'not enough free disk' }), 'ERR disk_full not enough free disk');
  });

  it('keeps every answer on one line and bounded', () => {
    const long = textReply('STATUS', { ok: true, command: 'get_status', data: { note: 'x'.repeat(1000) } });
    assert.ok(long.length <= 'OK STATUS '.length + 200);
    assert.equal(errLine('a\r\nb\u0000c'), 'ERR a b c');
    const json = jsonReply({ ok: true, command: 'mark', data: { label: 'l1\nl2' } });
    assert.ok(!/[\r\n]/.test(json));
    assert.deepEqual(JSON.parse(json), { ok: true, command: 'mark', data: { label: 'l1\nl2' } });
    assert.equal(summarizeData(undefined), '');
  });
});

describe('serialConfigSchema', () => {
  it('has safe defaults and accepts line ending names', () => {
    const cfg = serialConfigSchema.parse({});
    assert.equal(cfg.enabled, false);
    assert.equal(cfg.baud, 115200);
    assert.equal(cfg.line_ending, '\r\n');
    assert.equal(cfg.max_line_bytes, 512);
    assert.equal(cfg.reconnect_min_ms, 500);
    assert.equal(cfg.reconnect_max_ms, 10_000);
    assert.equal(serialConfigSchema.parse({ line_ending: 'lf' }).line_ending, '\n');
    assert.equal(serialConfigSchema.parse({ line_ending: '\r' }).line_ending, '\r');
    // Parsing a parsed config again changes nothing (the trigger re-parses what it is given).
    assert.deepEqual(serialConfigSchema.parse(cfg), cfg);
  });

  it('refuses an enabled port without a path, unknown keys and bad values', () => {
    assert.equal(serialConfigSchema.safeParse({ enabled: true }).success, false);
    assert.equal(serialConfigSchema.safeParse({ enabled: true, path: '/dev/serial/by-id/usb-FTDI-if00-port0' }).success, true);
    assert.equal(serialConfigSchema.safeParse({ baudrate: 9600 }).success, false);
    assert.equal(serialConfigSchema.safeParse({ baud: 0 }).success, false);
    assert.equal(serialConfigSchema.safeParse({ line_ending: '\t' }).success, false);
    assert.equal(serialConfigSchema.safeParse({ reconnect_min_ms: 5000, reconnect_max_ms: 1000 }).success, false);
  });
});
