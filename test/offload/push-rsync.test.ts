import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sshdMissing, startLoopbackSshd, type LoopbackSshd } from '../helpers/loopback-sshd.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { sleep } from '../helpers/wait-status.ts';
import { filesOf, sizeOr0, startOffloadBox, until, type OffloadBox } from './push-helpers.ts';

const sha = (f: string): string => createHash('sha256').update(readFileSync(f)).digest('hex');

/**
 * Push offload by rsync over SSH to a real sshd on loopback, into a folder whose name has spaces, quotes, commas
 * and a `$` (it reaches rsync and the remote shell of sha256sum/rm): a copy corrupted on the remote is caught by
 * the remote SHA-256 and never marked, retention deletes only what was verified, a trial starting stops the copy
 * at once and the copy is resumed afterwards without sending again what was already there.
 */
describe('push offload: rsync over SSH, verified by sha256sum on the remote', () => {
  const why = sshdMissing();
  let dir = '';
  let sshd: LoopbackSshd;
  const PATH = process.env.PATH;
  after(() => {
    process.env.PATH = PATH;
    sshd?.stop();
  });
  before(async () => {
    if (why) throw new Error(`push offload test cannot run: ${why}`);
    dir = tmpDir('rigcam-push-');
    sshd = await startLoopbackSshd(dir);
  });
  const target = (base: string) => ({
    type: 'rsync',
    host: '127.0.0.1',
    port: sshd.port,
    user: 'root',
    path: base,
    identity_file: sshd.identityFile,
    ssh_options: [`UserKnownHostsFile=${sshd.knownHosts}`, 'StrictHostKeyChecking=yes', 'IdentitiesOnly=yes'],
  });

  it('a copy corrupted on the remote is detected and not marked; once whole it is verified; retention deletes only verified copies', async () => {
    const base = path.join(dir, `backup it's, "odd" $HOME`);
    // A copy that arrives with one byte of its CSV changed (after rsync's own check, as a bad disk would).
    const wrap = path.join(dir, 'corrupting');
    mkdirSync(wrap);
    writeFileSync(
      path.join(wrap, 'rsync'),
      `#!/bin/bash\n/usr/bin/rsync "$@" || exit\nf="\${@: -1}"; f="\${f#*:}"\ncase "$f" in *.csv) printf 'X' | dd of="$f" bs=1 seek=20 conv=notrunc status=none;; esac\n`,
    );
    chmodSync(path.join(wrap, 'rsync'), 0o755);
    process.env.PATH = `${wrap}:${PATH}`;
    const b: OffloadBox = await startOffloadBox({
      offload: { target: target(base), box_name: 'box-1', bwlimit_kbps: 0, retry_initial_ms: 300, retry_max_ms: 600 },
      disk: { poll_idle_ms: 200, retention: { enabled: true, keep_free: '99%', require_verified_offload: true } },
    });
    const [id] = await b.trial('one', 1500);
    const files = filesOf(b, id!);
    assert.equal(files.length, 3, 'video, csv, sidecar');
    const remote = (rel: string): string => path.join(base, 'box-1', rel);

    const failed = await b.seenOrWait('offload', (m) => m.data.event === 'failed' && m.data.recording_id === id, 90_000);
    const csv = files.find((f) => f.path.endsWith('.csv'))!;
    const last = failed.data.last_error as { message: string; recording_id: number };
    assert.equal(last.recording_id, id);
    assert.match(last.message, new RegExp(`${csv.path.replace(/\./g, '\\.')}: remote copy has [0-9a-f]{64}, the box has ${csv.sha256}`));
    // It keeps failing (and retrying) while the copy arrives corrupted; it is never marked nor deleted.
    await b.waitStatus('offload', (m) => m.data.event === 'failed' && m.data.recording_id === id, 60_000);
    await sleep(600); // several retention polls at 99 % keep_free
    const rec = b.store.recording(id!)!;
    assert.equal(rec.offloaded_at, null, 'a corrupted copy is not marked offloaded');
    assert.equal(rec.deleted_at, null);
    for (const f of files) assert.ok(existsSync(path.join(b.root, f.path)), `${f.path} kept on the box`);
    const st = b.box.status().offload;
    assert.equal(st.mode, 'push');
    assert.equal(st.pending_recordings, 1);
    assert.equal(st.bytes_pending, files.reduce((n, f) => n + f.bytes, 0));
    assert.equal(st.last_success_at, null);
    const view = st.recordings.find((r) => r.recording_id === id)!;
    assert.ok(['failed', 'copying'].includes(view.state), view.state);

    process.env.PATH = PATH; // the network is good again
    const local = new Map(files.map((f) => [f.path, readFileSync(path.join(b.root, f.path))]));
    const verified = await b.waitStatus('offload', (m) => m.data.event === 'verified' && m.data.recording_id === id, 90_000);
    assert.ok(verified.data.last_success_at);
    for (const f of files) {
      assert.ok(readFileSync(remote(f.path)).equals(local.get(f.path)!), `${f.path}: remote copy is the box's file`);
      assert.equal(sha(remote(f.path)), f.sha256);
    }
    assert.ok(b.store.recording(id!)!.offload_verified_at);
    // Verified: now retention may delete it (keep_free 99 %), and does.
    await until('retention of the verified recording', () => b.store.recording(id!)!.deleted_at !== null, 10_000);
    for (const f of files) assert.ok(!existsSync(path.join(b.root, f.path)), `${f.path} deleted after the verified copy`);
    const after2 = b.box.status().offload;
    assert.equal(after2.pending_recordings, 0);
    assert.equal(after2.warning, null);
    await b.close();
  });

  it('a trial starting stops the copy at once; afterwards it resumes where it stopped (bytes not sent again)', async () => {
    const base = path.join(dir, 'resume, "two"');
    const b = await startOffloadBox({ offload: { target: target(base), box_name: 'box 2'.replace(' ', '-'), bwlimit_kbps: 40, retry_initial_ms: 300 } }, 800);
    const [id] = await b.trial('long', 3000);
    const video = filesOf(b, id!).find((f) => f.path.endsWith('.ts'))!;
    assert.ok(video.bytes > 150_000, `video large enough to interrupt (${video.bytes} bytes)`);
    const remoteVideo = path.join(base, 'box-2', video.path);
    await b.seenOrWait('offload', (m) => m.data.event === 'copying' && m.data.recording_id === id, 60_000);
    await until('part of the video on the remote', () => sizeOr0(remoteVideo) > 40_000, 60_000);

    const start = await b.box.handleCommand('start_recording', { trial_label: 'next' }, { source: 'api' });
    assert.ok(start.ok, start.error);
    const paused = await b.waitStatus('offload', (m) => m.data.event === 'interrupted' && m.data.recording_id === id, 5000);
    assert.equal(paused.data.activity, 'paused');
    const partial = sizeOr0(remoteVideo);
    assert.ok(partial > 0 && partial < video.bytes, `a partial copy is left (${partial} of ${video.bytes})`);
    await sleep(1500);
    assert.equal(sizeOr0(remoteVideo), partial, 'nothing is copied while the trial records');
    assert.equal(b.store.recording(id!)!.offloaded_at, null);

    const ids2 = (start.data!.recordings as Array<{ recording_id: number }>).map((r) => r.recording_id);
    const hashed = b.waitStatus('checksums', (m) => m.data.recording_id === ids2[0], 30_000);
    assert.ok((await b.box.handleCommand('stop_recording', {}, { source: 'api' })).ok);
    await hashed;
    const verified = await b.waitStatus('offload', (m) => m.data.event === 'verified' && m.data.recording_id === id, 60_000);
    const v = (verified.data.recordings as Array<{ recording_id: number; bytes: number; bytes_sent: number | null }>).find((r) => r.recording_id === id)!;
    assert.ok(v.bytes_sent !== null, 'rsync --stats read');
    // The resumed run sent the rest of the video (plus CSV, sidecar and protocol), not the part already there.
    assert.ok(v.bytes_sent < v.bytes - partial + 8192, `resumed copy sent ${v.bytes_sent} bytes for ${v.bytes} (${partial} were already there)`);
    assert.equal(sha(remoteVideo), video.sha256);
    await b.waitStatus('offload', (m) => m.data.event === 'verified' && m.data.recording_id === ids2[0], 60_000);
    await b.close();
  });

  it('the recording to copy is found past pages of waiting ones that are not ready (the backlog is read a page at a time)', async () => {
    const base = path.join(dir, 'paged');
    const b = await startOffloadBox({ offload: { target: target(base), box_name: 'box-3', bwlimit_kbps: 0, retry_initial_ms: 300 } });
    // 450 finished recordings never hashed (their files never made): waiting, not ready, older than the real one.
    b.store.transaction(() => {
      for (let i = 0; i < 450; i++) {
        const id = b.store.createRecording({ trialId: null, cameraId: 'cam0', segment: i, path: `old/r${i}.ts`, csvPath: `old/r${i}.csv`, codec: 'h264', encoder: 'libx264', width: 320, height: 240, fpsNominal: 15, clock: 'monotonic', mono0Us: 0, wall0Us: 0, triggerSource: null, triggerMonoUs: null }, false);
        b.store.finishRecording(id, { state: 'complete', frames: 10, dropped: 0, bytes: 1000, reason: null }, false);
      }
    });
    const [id] = await b.trial('after the backlog', 1000);
    assert.ok(id! > 450);
    await b.seenOrWait('offload', (m) => m.data.event === 'verified' && m.data.recording_id === id, 60_000);
    for (const f of filesOf(b, id!)) assert.equal(sha(path.join(base, 'box-3', f.path)), f.sha256);
    const st = b.box.status().offload;
    assert.equal(st.pending_recordings, 450, 'the unhashed ones still wait');
    await b.close();
  });
});
