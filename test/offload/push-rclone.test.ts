import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sshdMissing, startLoopbackSshd, type LoopbackSshd } from '../helpers/loopback-sshd.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { filesOf, startOffloadBox } from './push-helpers.ts';

/**
 * Push offload by rclone: to a local remote (a remote whose `rclone hashsum sha256` lies is caught and nothing is
 * marked until it tells the truth) and to SFTP on a loopback sshd (the hash computed by the server).
 */
describe('push offload: rclone, verified by rclone hashsum sha256', () => {
  let dir = '';
  let sshd: LoopbackSshd | null = null;
  const PATH = process.env.PATH;
  after(() => {
    process.env.PATH = PATH;
    sshd?.stop();
  });
  before(() => {
    dir = tmpDir('rigcam-rclone-');
    const missing = ['rclone'].filter((c) => !PATH?.split(':').some((d) => existsSync(path.join(d, c))));
    if (missing.length) throw new Error(`rclone test cannot run: missing ${missing.join(', ')} (.ci/run installs it)`);
  });

  it('local remote: a lying hash is not marked; a true one is, and the copy is the box\'s file', async () => {
    const conf = path.join(dir, 'rclone.conf');
    writeFileSync(conf, '[backup]\ntype = local\n');
    const dest = path.join(dir, `dest it's, "x"`);
    const wrap = path.join(dir, 'lying');
    mkdirSync(wrap);
    writeFileSync(path.join(wrap, 'rclone'), `#!/bin/bash\nif [ "$1" = hashsum ]; then /usr/bin/rclone "$@" | sed -E 's/^[0-9a-f]{64}/${'0'.repeat(64)}/'; exit "\${PIPESTATUS[0]}"; fi\nexec /usr/bin/rclone "$@"\n`);
    chmodSync(path.join(wrap, 'rclone'), 0o755);
    process.env.PATH = `${wrap}:${PATH}`;
    const b = await startOffloadBox({ offload: { target: { type: 'rclone', remote: `backup:${dest}`, config_file: conf }, box_name: 'box-r', bwlimit_kbps: 0, retry_initial_ms: 300, retry_max_ms: 600 } });
    const [id] = await b.trial('r1', 1200);
    const failed = await b.seenOrWait('offload', (m) => m.data.event === 'failed' && m.data.recording_id === id, 60_000);
    assert.match((failed.data.last_error as { message: string }).message, new RegExp(`remote copy has ${'0'.repeat(64)}, the box has`));
    assert.equal(b.store.recording(id!)!.offloaded_at, null, 'not marked on a hash that does not match');
    assert.equal(b.box.status().offload.target, `rclone backup:${dest}/box-r`);

    process.env.PATH = PATH;
    await b.seenOrWait('offload', (m) => m.data.event === 'verified' && m.data.recording_id === id, 60_000);
    assert.ok(b.store.recording(id!)!.offload_verified_at);
    for (const f of filesOf(b, id!)) assert.ok(readFileSync(path.join(dest, 'box-r', f.path)).equals(readFileSync(path.join(b.root, f.path))), f.path);
    await b.close();
  });

  it('crypt remote (no SHA-256 of its own): hashed by downloading; a corrupted copy is caught that way too, then sent again', async () => {
    // rclone's crypt remote stores encrypted names and contents, so it has no hash to give: `hashsum sha256` fails
    // with "hash type not supported" and the only check is --download (the copy decrypted and hashed here).
    const store = path.join(dir, 'crypt-store');
    const conf = path.join(dir, 'crypt.conf');
    const password = execFileSync('rclone', ['obscure', 'rigcam-test-password'], { encoding: 'utf8' }).trim();
    writeFileSync(conf, `[base]\ntype = local\n\n[vault]\ntype = crypt\nremote = base:${store}\npassword = ${password}\n`);
    // The real rclone behind a wrapper that logs each hashsum and, while `corrupt` exists, sends a .ts with one
    // byte changed (a copy damaged on its way: stored encrypted and valid, but not the box's file).
    const wrap = path.join(dir, 'crypt-wrap');
    const calls = path.join(dir, 'crypt-hashsum.log');
    const corrupt = path.join(dir, 'corrupt');
    mkdirSync(wrap);
    writeFileSync(corrupt, '');
    writeFileSync(
      path.join(wrap, 'rclone'),
      `#!/bin/bash
if [ "$1" = hashsum ]; then echo "$*" >> '${calls}'; fi
if [ "$1" = copyto ] && [ -e '${corrupt}' ] && [[ "$2" == *.ts ]]; then
  t=$(mktemp); cp "$2" "$t"; printf 'Z' | dd of="$t" bs=1 seek=200 conv=notrunc status=none
  shift 2; /usr/bin/rclone copyto "$t" "$@"; rc=$?; rm -f "$t"; exit $rc
fi
exec /usr/bin/rclone "$@"
`,
    );
    chmodSync(path.join(wrap, 'rclone'), 0o755);
    process.env.PATH = `${wrap}:${PATH}`;
    const b = await startOffloadBox({ offload: { target: { type: 'rclone', remote: 'vault:lab', config_file: conf }, box_name: 'box-c', bwlimit_kbps: 0, retry_initial_ms: 300, retry_max_ms: 600 } });
    try {
      const [id] = await b.trial('c1', 1200);
      const video = filesOf(b, id!).find((f) => f.path.endsWith('.ts'))!;
      const failed = await b.seenOrWait('offload', (m) => m.data.event === 'failed' && m.data.recording_id === id, 60_000);
      const message = (failed.data.last_error as { message: string }).message;
      assert.match(message, new RegExp(`${video.path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: remote copy has [0-9a-f]{64}, the box has ${video.sha256}`));
      assert.equal(b.store.recording(id!)!.offloaded_at, null, 'a corrupted copy is not marked');
      const tried = readFileSync(calls, 'utf8').trim().split('\n');
      assert.ok(tried.some((l) => !l.includes('--download')) && tried.some((l) => l.includes('--download')), `asked for the hash, then downloaded: ${tried.join(' | ')}`);
      assert.ok(!readdirSync(store, { recursive: true }).some((f) => String(f).includes('box-c')), 'names are encrypted on the remote');

      rmSync(corrupt);
      await b.seenOrWait('offload', (m) => m.data.event === 'verified' && m.data.recording_id === id, 60_000);
      assert.ok(b.store.recording(id!)!.offload_verified_at);
      // What is on the remote now, decrypted by rclone itself, is the box's file.
      const back = execFileSync('/usr/bin/rclone', ['cat', `vault:lab/box-c/${video.path}`, '--config', conf]);
      assert.ok(back.equals(readFileSync(path.join(b.root, video.path))), 'the copy on the remote is the box\'s video');
    } finally {
      process.env.PATH = PATH;
      await b.close();
    }
  });

  it('SFTP to a loopback sshd: copied and verified by the server\'s sha256sum', async () => {
    const why = sshdMissing();
    if (why) throw new Error(`rclone SFTP test cannot run: ${why}`);
    sshd = await startLoopbackSshd(path.join(dir, 'sftp'));
    const conf = path.join(dir, 'sftp.conf');
    writeFileSync(conf, `[lab]\ntype = sftp\nhost = 127.0.0.1\nport = ${sshd.port}\nuser = root\nkey_file = ${sshd.identityFile}\nknown_hosts_file = ${sshd.knownHosts}\n`);
    const dest = path.join(dir, 'sftp dest, "q"');
    const b = await startOffloadBox({ offload: { target: { type: 'rclone', remote: `lab:${dest}`, config_file: conf }, box_name: 'box-s', bwlimit_kbps: 0, retry_initial_ms: 300 } });
    const [id] = await b.trial('s1', 1200);
    const v = await b.seenOrWait('offload', (m) => (m.data.event === 'verified' || m.data.event === 'failed') && m.data.recording_id === id, 90_000);
    assert.equal(v.data.event, 'verified', JSON.stringify(v.data.last_error));
    for (const f of filesOf(b, id!)) assert.ok(readFileSync(path.join(dest, 'box-s', f.path)).equals(readFileSync(path.join(b.root, f.path))), f.path);
    await b.close();
  });
});
