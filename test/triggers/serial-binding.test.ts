import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HangupError, serialBinding } from '../../src/triggers/serial/hangup-safe-binding.ts';
import { startSocatPty } from '../helpers/socat-pty.ts';

const within = <T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> =>
  Promise.race([p, new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), ms).unref())]);

describe('serialBinding (real bindings-cpp, hang-up fix)', { timeout: 15_000 }, () => {
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
