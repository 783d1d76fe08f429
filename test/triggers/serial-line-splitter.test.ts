import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LineSplitter, type LineEvent } from '../../src/triggers/serial/line-splitter.ts';

const bytes = (s: string): Buffer => Buffer.from(s, 'utf8');
const texts = (evs: LineEvent[]): string[] => evs.map((e) => (e.kind === 'line' ? e.text : `!${e.reason}`));

describe('LineSplitter', () => {
  it('ends lines at \\r, \\n and \\r\\n alike, without empty lines in between', () => {
    const s = new LineSplitter(512);
    assert.deepEqual(texts(s.push(bytes('PING\rSTOP\nSTART a 1\r\nMARK x\n\r'), 1)), ['PING', 'STOP', 'START a 1', 'MARK x']);
  });

  it('counts a \\r\\n split across two chunks as one line end', () => {
    const s = new LineSplitter(512);
    assert.deepEqual(texts(s.push(bytes('PING\r'), 1)), ['PING']);
    assert.deepEqual(texts(s.push(bytes('\nSTOP\r\n'), 2)), ['STOP']);
  });

  it('skips blank and blank-only lines', () => {
    const s = new LineSplitter(512);
    assert.deepEqual(texts(s.push(bytes('\n\n \t \r\n\r\rPING\n'), 1)), ['PING']);
  });

  it('stamps a line with the arrival time of its first byte, not of its end', () => {
    const s = new LineSplitter(512);
    assert.deepEqual(s.push(bytes('S'), 100), []);
    assert.deepEqual(s.push(bytes('TA'), 200), []);
    const evs = s.push(bytes('RT\nPI'), 300);
    assert.deepEqual(evs, [{ kind: 'line', text: 'START', firstByteMonoUs: 100 }]);
    // The next line began in that same chunk, so it carries that chunk's time.
    assert.deepEqual(s.push(bytes('NG\n'), 400), [{ kind: 'line', text: 'PING', firstByteMonoUs: 300 }]);
  });

  it('accepts a line of exactly maxLineBytes', () => {
    const s = new LineSplitter(16);
    assert.deepEqual(texts(s.push(bytes(`${'a'.repeat(16)}\n`), 1)), ['a'.repeat(16)]);
  });

  it('reports an over-long line once, discards it to the line end, and keeps memory bounded', () => {
    const s = new LineSplitter(16);
    const evs: LineEvent[] = [];
    for (let i = 0; i < 100; i++) {
      evs.push(...s.push(bytes('x'.repeat(50)), 10 + i));
      assert.ok(s.pendingBytes <= 16);
    }
    assert.deepEqual(evs, [{ kind: 'error', reason: 'line too long', firstByteMonoUs: 10 }]);
    assert.deepEqual(s.push(bytes('tail\nPING\n'), 500), [{ kind: 'line', text: 'PING', firstByteMonoUs: 500 }]);
  });

  it('rejects invalid UTF-8 and control characters as binary data', () => {
    const s = new LineSplitter(512);
    const evs = s.push(Buffer.concat([Buffer.from([0xff, 0xfe, 0x41]), bytes('\n'), bytes('PI\u0000NG\n'), bytes('\u001b[A\n'), bytes('ok\n')]), 7);
    assert.deepEqual(texts(evs), ['!binary data', '!binary data', '!binary data', 'ok']);
    // A multi-byte UTF-8 character split across chunks is not garbage.
    const euro = bytes('MARK €\n');
    assert.deepEqual(texts(s.push(euro.subarray(0, 6), 8)), []);
    assert.deepEqual(texts(s.push(euro.subarray(6), 9)), ['MARK €']);
  });

  it('accepts tabs inside a line', () => {
    const s = new LineSplitter(512);
    assert.deepEqual(texts(s.push(bytes('START\ta\t2\n'), 1)), ['START\ta\t2']);
  });

  it('forgets a partial line on reset', () => {
    const s = new LineSplitter(512);
    s.push(bytes('STA'), 1);
    s.reset();
    assert.equal(s.pendingBytes, 0);
    assert.deepEqual(s.push(bytes('PING\n'), 2), [{ kind: 'line', text: 'PING', firstByteMonoUs: 2 }]);
  });
});
