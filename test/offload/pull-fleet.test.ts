import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startHttpBox, type HttpBox } from '../helpers/box.ts';
import { repoRoot } from '../helpers/cli.ts';
import { sshdMissing, startLoopbackSshd, type LoopbackSshd } from '../helpers/loopback-sshd.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { sleep } from '../helpers/wait-status.ts';

const script = path.join(repoRoot, 'scripts/pull-fleet.sh');
const TOKEN = 'pull-fleet-token-0123456789';

/**
 * scripts/pull-fleet.sh for real: a rigcam box serving its API over loopback HTTP (with a token), its files reached
 * by rsync over a loopback sshd, a copy corrupted on its way (a wrapper around rsync flips a byte once it is done)
 * and a partial copy left by an interrupted transfer.
 */
describe('scripts/pull-fleet.sh: rsync over SSH, sha256sum, mark only confirmed copies', () => {
  const why = sshdMissing();
  let dir = '';
  let sshd: LoopbackSshd | null = null;
  let b: HttpBox;
  let ids: number[] = [];
  after(async () => {
    sshd?.stop();
    await b?.close();
  });

  before(async () => {
    if (why) throw new Error(`pull-fleet test cannot run: ${why}`);
    dir = tmpDir('rigcam-pull-');
    sshd = await startLoopbackSshd(dir);
    b = await startHttpBox({ token: TOKEN });
    for (const label of ['one', 'two']) {
      const start = await b.api('/api/trials/start', { json: { session: 'pull', label } });
      assert.equal(start.status, 200);
      const id = ((await start.json()) as { data: { recordings: Array<{ recording_id: number }> } }).data.recordings[0]!.recording_id;
      const sums = b.waitStatus('checksums', (m) => m.data.recording_id === id, 30_000);
      await sleep(1000);
      assert.equal((await b.api('/api/trials/stop', { json: {} })).status, 200);
      await sums;
      ids.push(id);
    }
  });

  /** Run the script; asynchronously, since the box it pulls from runs in this process. */
  const run = (inventory: string, dest: string, env: Record<string, string> = {}): Promise<{ status: number | null; stdout: string; stderr: string }> =>
    new Promise((resolve) => {
      const c = spawn('bash', [script, inventory, dest], { env: { ...process.env, RIGCAM_SSH: sshd!.ssh, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const t = setTimeout(() => c.kill('SIGKILL'), 120_000);
      c.on('close', (status) => (clearTimeout(t), resolve({ status, stdout, stderr })));
    });

  it('a copy corrupted in transit is detected, deleted and not marked; a partial copy is completed; the next run fixes it', async () => {
    const dest = path.join(dir, 'dest');
    const tokenFile = path.join(dir, 'token');
    writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
    const inventory = path.join(dir, 'inventory');
    writeFileSync(inventory, `# the fleet\nbox1 root@127.0.0.1 ${b.url} ${tokenFile}\n`);
    const [first, second] = ids.map((id) => b.store.recording(id)!);
    // An interrupted earlier transfer left the first half of the second recording's video.
    const partial = path.join(dest, 'box1', second!.path);
    mkdirSync(path.dirname(partial), { recursive: true });
    const whole = readFileSync(path.join(b.root, second!.path));
    writeFileSync(partial, whole.subarray(0, Math.floor(whole.length / 2)));
    // The first recording's CSV arrives with one byte changed.
    const corrupt = path.join(dest, 'box1', first!.csv_path);
    const wrapper = path.join(dir, 'rsync-corrupting');
    writeFileSync(wrapper, `#!/bin/bash\nrsync "$@" || exit\nprintf 'X' | dd of=${JSON.stringify(corrupt)} bs=1 seek=20 conv=notrunc status=none\n`);
    chmodSync(wrapper, 0o755);

    const r1 = await run(inventory, dest, { RIGCAM_RSYNC: wrapper });
    assert.equal(r1.status, 1, r1.stdout + r1.stderr);
    assert.match(r1.stdout, new RegExp(`recording ${first!.id}: ${first!.csv_path.replace(/\./g, '\\.')}: copy [0-9a-f]{64} does not match`));
    assert.match(r1.stdout, /box1: 1 recording\(s\) copied, verified and marked offloaded; 1 not/);
    assert.equal(b.store.recording(first!.id)!.offloaded_at, null, 'the corrupted copy is not marked');
    assert.ok(!existsSync(corrupt), 'the bad copy is deleted so the next run fetches it again');
    const s2 = b.store.recording(second!.id)!;
    assert.ok(s2.offloaded_at && s2.offload_verified_at, 'the other recording is marked, verified');
    assert.deepEqual(readFileSync(partial), whole, 'the partial copy was completed');

    const r2 = await run(inventory, dest);
    assert.equal(r2.status, 0, r2.stdout + r2.stderr);
    assert.match(r2.stdout, /box1: 1 recording\(s\) copied, verified and marked offloaded; 0 not/);
    assert.ok(b.store.recording(first!.id)!.offload_verified_at);
    for (const rel of [first!.path, first!.csv_path, first!.path.replace(/\.ts$/, '.json')])
      assert.deepEqual(readFileSync(path.join(dest, 'box1', rel)), readFileSync(path.join(b.root, rel)), rel);

    const r3 = await run(inventory, dest);
    assert.equal(r3.status, 0);
    assert.match(r3.stdout, /box1: nothing to offload/);
  });

  it('a box that does not answer, a wrong token or a bad inventory line fails the run and marks nothing', async () => {
    const dest = path.join(dir, 'dest2');
    const inventory = path.join(dir, 'inventory2');
    writeFileSync(inventory, `box1 root@127.0.0.1 ${b.url}\nbox2 root@127.0.0.1 http://127.0.0.1:1\n../x root@127.0.0.1 ${b.url}\n`);
    const r = await run(inventory, dest, { RIGCAM_TOKEN: 'wrong-token-wrong-token' });
    assert.equal(r.status, 1);
    assert.match(r.stdout, /box1: manifest not fetched/);
    assert.match(r.stdout, /box2: manifest not fetched/);
    assert.match(r.stderr, /bad inventory line for '\.\.\/x'/);
  });
});
