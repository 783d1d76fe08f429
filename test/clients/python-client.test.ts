import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { repoRoot, rigcamBin } from '../helpers/cli.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { sleep } from '../helpers/wait-status.ts';
import { freePort } from '../helpers/free-port.ts';

const TOKEN = 'python-client-token-0123456789';
const clientDir = path.join(repoRoot, 'clients/python');

function run(cmd: string, args: string[], env: Record<string, string>, timeoutMs = 240_000): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const c = spawn(cmd, args, { cwd: clientDir, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const t = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    c.on('close', (code) => (clearTimeout(t), resolve({ code, out })));
  });
}

/** The Python client (standard library only) against a real `rigcam serve`, with real python3. */
describe('clients/python/rigcam_client.py against rigcam serve', () => {
  const dir = tmpDir('rigcam-py-');
  let url = '';
  let serve: ReturnType<typeof spawn> | null = null;
  let log = '';

  before(async () => {
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    const cfg = path.join(dir, 'rigcam.yaml');
    writeFileSync(cfg, `data_dir: ${dir}\nhttp:\n  port: ${port}\n  token: ${TOKEN}\ncameras:\n  - { id: cam0, width: 320, height: 240, fps: 15, gop_seconds: 0.5, bitrate_kbps: 300 }\n`);
    serve = spawn(process.execPath, [rigcamBin, 'serve', '--config', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
    serve.stdout!.on('data', (d: Buffer) => (log += d.toString()));
    serve.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    const t0 = Date.now();
    for (;;) {
      const ok = await fetch(`${url}/api/status`, { headers: { authorization: `Bearer ${TOKEN}` } })
        .then(async (r) => r.ok && ((await r.json()) as { cameras: Array<{ state: string }> }).cameras.every((c) => c.state === 'ready'))
        .catch(() => false);
      if (ok) break;
      if (Date.now() - t0 > 60_000) throw new Error(`rigcam serve did not come up: ${log.slice(-2000)}`);
      await sleep(200);
    }
  });
  after(async () => {
    if (serve && serve.exitCode === null) {
      serve.kill('SIGTERM');
      await new Promise((r) => serve!.once('close', r));
    }
  });

  const env = (): Record<string, string> => ({ RIGCAM_URL: url, RIGCAM_TOKEN: TOKEN, RIGCAM_ROOT: path.join(dir, 'recordings'), PYTHONDONTWRITEBYTECODE: '1' });

  it('passes its unittest suite (python3 -m unittest)', async () => {
    const r = await run('python3', ['-m', 'unittest', '-v', 'test_rigcam_client'], env());
    assert.equal(r.code, 0, r.out + '\n--- rigcam serve:\n' + log.slice(-3000));
    const ran = /Ran (\d+) tests?/.exec(r.out);
    assert.ok(ran && Number(ran[1]) >= 8, `tests ran: ${r.out}`);
    assert.match(r.out, /\nOK\s*$/);
  });

  it('the example records a trial, downloads it verified and loads its timing', async () => {
    const dest = path.join(dir, 'example-out');
    const r = await run('python3', ['example_trial.py', '--url', url, '--token', TOKEN, '--seconds', '2', '--dest', dest], {});
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /cam0: (\d+) frames, [\d.]+ fps, \d+ dropped, verified .*\.ts/);
    const frames = Number(/cam0: (\d+) frames/.exec(r.out)![1]);
    assert.ok(frames >= 20, `${frames} frames in 2 s at 15 fps`);
  });
});
