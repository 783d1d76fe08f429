import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SerialPortStream } from '@serialport/stream';
import { HangupError, serialBinding } from '../../src/triggers/serial/hangup-safe-binding.ts';
import { startSocatPty } from '../helpers/socat-pty.ts';

const within = <T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> =>
  Promise.race([p, new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), ms).unref())]);

describe('serialBinding (real bindings-cpp, hang-up and write fixes)', { timeout: 15_000 }, () => {
  it('moves bytes both ways over a pty pair', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rigcam-binding-'));
    const pty = await startSocatPty(join(dir, 'a'), join(dir, 'b'));
    const binding = serialBinding();
    const a = await binding.open({ path: pty.linkA, baudRate: 115200 });
    const b = await binding.open({ path: pty.linkB, baudRate: 115200 });
    try {
      await a.write(Buffer.from('PING\r\n'));
      const got = await b.read(Buffer.alloc(64), 0, 64);
      assert.equal(got.buffer.subarray(0, got.bytesRead).toString(), 'PING\r\n');
    } finally {
      await a.close();
      await b.close();
      await pty.kill();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a write that fills the output buffer finishes after bytes arrived meanwhile (bindings-cpp alone stalls it for good)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rigcam-binding-'));
    const pty = await startSocatPty(join(dir, 'a'), join(dir, 'b'));
    // Both ends as the box and the lab's controller use them: streams over the real binding.
    const a = new SerialPortStream({ binding: serialBinding(), path: pty.linkA, baudRate: 115200, autoOpen: false });
    const b = new SerialPortStream({ binding: serialBinding(), path: pty.linkB, baudRate: 115200, autoOpen: false });
    const open = (p: SerialPortStream): Promise<void> => new Promise((resolve, reject) => p.open((err) => (err ? reject(err) : resolve())));
    await open(a);
    await open(b);
    const size = 1 << 20; // far beyond what the ptys and socat buffer: a's writes hit EAGAIN
    let atA = 0;
    a.on('data', (c: Buffer) => (atA += c.length)); // a reads all the time: every read re-arms the poller
    const ticker = setInterval(() => b.write('.'), 5); // bytes keep arriving at a while it waits to write
    try {
      const written = new Promise<void>((resolve, reject) => a.write(Buffer.alloc(size, 0x78), (err) => (err ? reject(err) : resolve())));
      await new Promise((r) => setTimeout(r, 300)); // b reads nothing yet: a's output stays full
      // The last byte to arrive re-arms a's poller for reading only; from here on nothing arrives at a.
      clearInterval(ticker);
      let atB = 0;
      const allAtB = new Promise<void>((resolve) =>
        b.on('data', (c: Buffer) => {
          atB += c.length;
          if (atB >= size) resolve();
        }),
      );
      assert.notEqual(await within(Promise.all([written, allAtB]), 10_000), 'timeout', `write stalled: ${atB} of ${size} bytes arrived`);
      assert.equal(atB, size);
      assert.ok(atA > 0, 'a kept reading meanwhile');
    } finally {
      clearInterval(ticker);
      await new Promise<void>((r) => a.close(() => r()));
      await new Promise<void>((r) => b.close(() => r()));
      await pty.kill();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('fails a read on a hung-up port instead of spinning on 0-byte reads', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rigcam-binding-'));
    const pty = await startSocatPty(join(dir, 'a'), join(dir, 'b'));
    const port = await serialBinding().open({ path: pty.linkA, baudRate: 115200 });
    try {
      await pty.kill(); // the pty is hung up; with bindings-cpp 13 alone this read never settles
      const outcome = await within(
        port.read(Buffer.alloc(64), 0, 64).then(
          () => 'data',
          (err: unknown) => err,
        ),
        2000,
      );
      assert.ok(outcome instanceof HangupError, `expected a HangupError, got ${String(outcome)}`);
    } finally {
      if (port.isOpen) await port.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
