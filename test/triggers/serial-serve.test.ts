import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { SerialPortStream } from '@serialport/stream';
import { serialBinding } from '../../src/triggers/serial/hangup-safe-binding.ts';
import { rigcamBin } from '../helpers/cli.ts';
import { startSocatPty } from '../helpers/socat-pty.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { sleep } from '../runtime/runtime-helpers.ts';

// `rigcam serve` loads the serial trigger only when serial.enabled (start-up cost): this is the service itself,
// configured as a lab configures it, answering a controller on a real pty.
describe('rigcam serve with serial.enabled', () => {
  it('loads the serial trigger and records a trial a serial START / STOP asks for', async () => {
    const dir = tmpDir();
    const pty = await startSocatPty(path.join(dir, 'rigcam-tty'), path.join(dir, 'controller'));
    const cfg = path.join(dir, 'rigcam.yaml');
    writeFileSync(cfg, `data_dir: ${dir}\nhttp:\n  port: 0\nserial:\n  enabled: true\n  path: ${pty.linkA}\ncameras:\n  - { id: cam0, width: 320, height: 240, fps: 30 }\n`);
    const child = spawn(process.execPath, [rigcamBin, 'serve', '--config', cfg], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RIGCAM_CONFIG: '' } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const controller = new SerialPortStream({ binding: serialBinding(), path: pty.linkB, baudRate: 115200, autoOpen: false });
    controller.on('error', () => undefined);
    try {
      const waitFor = async (what: string): Promise<void> => {
        for (const t0 = Date.now(); !out.includes(what); await sleep(100)) if (Date.now() - t0 > 60_000) throw new Error(`no ${what}: ${out.slice(-3000)}`);
      };
      await waitFor('"serial_connected"');
      await new Promise<void>((resolve, reject) => controller.open((err) => (err ? reject(err) : resolve())));
      const replies: string[] = [];
      let partial = '';
      controller.on('data', (chunk: Buffer) => {
        const parts = (partial + chunk.toString('utf8')).split(/\r\n|\r|\n/);
        partial = parts.pop()!;
        for (const l of parts) if (l) replies.push(l.trim());
      });
      const send = async (line: string): Promise<string> => {
        const n = replies.length;
        controller.write(`${line}\r\n`);
        for (const t0 = Date.now(); replies.length === n; await sleep(20)) if (Date.now() - t0 > 15_000) throw new Error(`no reply to ${line}: ${out.slice(-2000)}`);
        return replies[n]!;
      };
      assert.match(await send('START'), /^OK START/);
      await sleep(800);
      assert.match(await send('STOP'), /^OK STOP/);
      await waitFor('"recording_stopped"');
      assert.match(out, /"trigger_source":"serial"/, 'the trial was started by the serial trigger');
    } finally {
      if (controller.isOpen) await new Promise<void>((r) => controller.close(() => r()));
      child.kill('SIGTERM');
      const code = await new Promise((r) => child.on('close', r));
      await pty.kill();
      assert.equal(code, 0, out.slice(-2000));
    }
  });
});
