import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { chromium } from 'playwright-core';
import { tmpDir } from '../helpers/tmp.ts';
import { ConfigError, parseConfig } from '../../src/config/load.ts';
import { filesOf, startOffloadBox, until } from './push-helpers.ts';

describe('offload config: a bad `offload:` is refused naming its key', () => {
  const rsync = { type: 'rsync', host: 'backup.lab', path: '/srv/rigcam' };
  for (const [what, offload, key] of [
    ['a relative server path', { target: { ...rsync, path: 'srv/rigcam' } }, /offload\.target\.path: must be an absolute path/],
    ['an ssh option with a command in it', { target: { ...rsync, ssh_options: ['ProxyCommand=nc -X connect %h %p'] } }, /offload\.target\.ssh_options\[0\]: an ssh option as Name=value/],
    ['too many ssh options', { target: { ...rsync, ssh_options: Array.from({ length: 17 }, () => 'Compression=no') } }, /offload\.target\.ssh_options: at most 16/],
    ['a misspelt key', { target: { ...rsync, hots: 'x' } }, /offload\.target: unknown key "hots"/],
    ['an unknown target type', { target: { type: 'ftp', host: 'x' } }, /offload\.target\.type/],
    ['a host with a space', { target: { ...rsync, host: 'a b' } }, /offload\.target\.host: a host name/],
    ['an rclone remote without its name', { target: { type: 'rclone', remote: '/srv/x' } }, /offload\.target\.remote: an rclone remote as name:path/],
    ['a line break in a path', { target: { ...rsync, path: '/srv/a\nb' } }, /offload\.target\.path: must not contain control characters/],
    ['retries shorter at most than at first', { retry_initial_ms: 5000, retry_max_ms: 1000 }, /offload\.retry_max_ms: retry_max_ms must not be below retry_initial_ms/],
    ['a stale time of zero', { stale_after_hours: 0 }, /offload\.stale_after_hours/],
    ['a relative identity file', { target: { ...rsync, identity_file: 'id_ed25519' } }, /offload\.target\.identity_file/],
  ] as const) {
    it(`refuses ${what}`, () => {
      assert.throws(() => parseConfig({ offload }), (e: unknown) => e instanceof ConfigError && key.test(e.message), `expected ${key}`);
    });
  }

  it('accepts both kinds of target, and none (pull only) by default', () => {
    assert.equal(parseConfig({}).offload.target, null);
    assert.equal(parseConfig({}).offload.stale_after_hours, 24);
    const r = parseConfig({ offload: { target: { ...rsync, user: 'rigcam', port: 2222, identity_file: '/etc/rigcam/offload_ed25519', ssh_options: ['StrictHostKeyChecking=yes'] } } });
    assert.equal(r.offload.target?.type, 'rsync');
    const c = parseConfig({ offload: { target: { type: 'rclone', remote: 'minio:rigcam bucket/lab 3', config_file: '/etc/rigcam/rclone.conf' }, stale_after_hours: 6 } });
    assert.equal(c.offload.target?.type, 'rclone');
  });
});

/**
 * Pull offload (no target): the same state (pending, bytes, last success and error) and the stale-backup warning,
 * with the offload's clock moved forward rather than waited for.
 */
describe('offload state and the stale warning (pull)', () => {
  it('stale after offload.stale_after_hours with recordings waiting: status, health and a warning; a verified pull clears it', async () => {
    const b = await startOffloadBox({ offload: { stale_after_hours: 2 } });
    const [id] = await b.trial('p1', 1000);
    const files = filesOf(b, id!);
    const health = async () => (await (await fetch(`${b.url}/api/health`)).json()) as { offload_stale: boolean; offload_warning?: string };
    const status = async () => ((await (await fetch(`${b.url}/api/status`)).json()) as { offload: Record<string, unknown> }).offload;

    let st = await status();
    assert.equal(st.mode, 'pull');
    assert.equal(st.pending_recordings, 1);
    assert.equal(st.bytes_pending, files.reduce((n, f) => n + f.bytes, 0));
    assert.equal(st.warning, null);
    assert.equal((st.recordings as Array<{ state: string }>)[0]!.state, 'pending');
    assert.equal((await health()).offload_stale, false);

    b.clock.offsetMs = 1.9 * 3_600_000; // not yet
    b.box.offload.checkStale();
    assert.equal((await status()).warning, null);
    assert.ok(!b.statuses.some((m) => m.status === 'warning'));

    b.clock.offsetMs = 2.1 * 3_600_000;
    const warned = b.waitStatus('warning', (m) => /backup stale/.test(String(m.data.message)), 5000);
    b.box.offload.checkStale();
    assert.match(String((await warned).data.message), /backup stale: 1 recording\(s\) not offloaded, nothing confirmed for 2 h \(no backup has ever succeeded; offload\.stale_after_hours 2\)/);
    b.box.offload.checkStale();
    assert.equal(b.statuses.filter((m) => m.status === 'warning').length, 1, 'warned once, not at every check');
    st = await status();
    assert.match(String(st.warning), /backup stale/);
    const h = await health();
    assert.equal(h.offload_stale, true);
    assert.match(String(h.offload_warning), /backup stale/);
    // The page shows it too.
    assert.ok(existsSync('/usr/bin/chromium'), 'chromium is installed (.ci/run)');
    const ctx = await chromium.launchPersistentContext(tmpDir('rigcam-chromium-'), { executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-gpu', '--no-first-run'] });
    try {
      const page = ctx.pages()[0] ?? (await ctx.newPage());
      await page.goto(b.url);
      const el = page.getByTestId('offload');
      await el.filter({ hasText: 'backup stale' }).waitFor({ timeout: 20_000 });
      assert.match((await el.textContent()) ?? '', /backup \(pull\): 1 waiting, .* · last success: never.*backup stale/);
      assert.match((await el.getAttribute('class')) ?? '', /\bwarn\b/);
    } finally {
      await ctx.close();
    }

    // A pull whose copy does not match: refused, and it is the last error.
    const bad = Object.fromEntries(files.map((f) => [f.path, f.sha256]));
    bad[files[0]!.path] = 'a'.repeat(64);
    const r409 = await fetch(`${b.url}/api/recordings/${id}/offloaded`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sha256: bad }) });
    assert.equal(r409.status, 409);
    st = await status();
    assert.match(String((st.last_error as { message: string }).message), /not marked offloaded/);
    assert.match(String(st.warning), /last error: recording \d+ not marked offloaded/);

    const ok = await fetch(`${b.url}/api/recordings/${id}/offloaded`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sha256: Object.fromEntries(files.map((f) => [f.path, f.sha256])) }) });
    assert.equal(ok.status, 200);
    st = await status();
    assert.equal(st.pending_recordings, 0);
    assert.equal(st.warning, null);
    assert.ok(st.last_success_at);
    assert.equal((await health()).offload_stale, false);
    await b.close();
  });
});

/**
 * A box that has not been backed up for a while holds hundreds of waiting recordings: /api/status (and every offload
 * status) must stay one query for all of them, and still say the right thing about each.
 */
describe('offload state with many waiting recordings', () => {
  it('200 waiting recordings: right state and bytes for each, bytes pending summed, without a query per recording', async () => {
    const b = await startOffloadBox({});
    try {
      const made: Array<{ id: number; bytes: number; expect: 'pending' | 'failed' | 'gone' | 'verified' }> = [];
      for (let i = 0; i < 230; i++) {
        const id = b.store.createRecording({ trialId: null, cameraId: 'cam0', segment: i, path: `bulk/r${i}.ts`, csvPath: `bulk/r${i}.csv`, codec: 'h264', encoder: 'libx264', width: 320, height: 240, fpsNominal: 15, clock: 'monotonic', mono0Us: 0, wall0Us: 0, triggerSource: null, triggerMonoUs: null }, false);
        if (i === 229) {
          made.push({ id, bytes: 0, expect: 'gone' }); // still recording: not waiting
          continue;
        }
        b.store.finishRecording(id, { state: 'complete', frames: 10, dropped: 0, bytes: 5000 + i, reason: null });
        let bytes = 5000 + i; // not hashed yet: the size the recorder counted
        if (i % 4 !== 0) {
          b.store.setChecksum({ recording_id: id, kind: 'video', path: `bulk/r${i}.ts`, bytes: 100_000 + i, sha256: 'a'.repeat(64) });
          b.store.setChecksum({ recording_id: id, kind: 'csv', path: `bulk/r${i}.csv`, bytes: 700 + i, sha256: 'b'.repeat(64) });
          b.store.setChecksum({ recording_id: id, kind: 'sidecar', path: `bulk/r${i}.json`, bytes: 30, sha256: 'c'.repeat(64) });
          bytes = 100_000 + i + 700 + i + 30;
        }
        if (i >= 200 && i < 215) {
          await b.store.markOffloadVerified(id);
          b.box.offloadOutcome(id, null);
          made.push({ id, bytes, expect: i >= 205 ? 'verified' : 'gone' }); // the last 10 are listed as verified
        } else if (i >= 215) {
          b.store.markDeleted(id);
          made.push({ id, bytes, expect: 'gone' });
        } else made.push({ id, bytes, expect: i % 50 === 7 ? 'failed' : 'pending' });
      }
      for (const m of made) if (m.expect === 'failed') b.box.offloadOutcome(m.id, `copy of ${m.id} did not match`);
      const waiting = made.filter((m) => m.expect === 'pending' || m.expect === 'failed');
      assert.equal(waiting.length, 200);

      // Count per-recording look-ups while the status is served (the fix made them one query for all).
      let perRecording = 0;
      const { checksumsOf, recording } = b.store;
      b.store.checksumsOf = (id) => (perRecording++, checksumsOf.call(b.store, id));
      b.store.recording = (id) => (perRecording++, recording.call(b.store, id));
      let st;
      try {
        st = ((await (await fetch(`${b.url}/api/status`)).json()) as { offload: import('../../src/offload/status.ts').OffloadStatus }).offload;
      } finally {
        b.store.checksumsOf = checksumsOf;
        b.store.recording = recording;
      }
      assert.equal(perRecording, 0, 'no query per recording');
      assert.equal(st.pending_recordings, 200);
      assert.equal(st.bytes_pending, waiting.reduce((n, m) => n + m.bytes, 0));
      const listed = st.recordings.filter((r) => r.state !== 'verified');
      assert.equal(listed.length, 100, 'the oldest 100 waiting are listed');
      assert.deepEqual(
        listed.map((r) => [r.recording_id, r.state, r.bytes]),
        waiting.slice(0, 100).map((m) => [m.id, m.expect, m.bytes]),
      );
      assert.match(String(listed.find((r) => r.state === 'failed')?.error), /did not match/);
      assert.deepEqual(
        st.recordings.filter((r) => r.state === 'verified').map((r) => [r.recording_id, r.bytes]),
        made.filter((m) => m.expect === 'verified').map((m) => [m.id, m.bytes]),
      );

      // The pull manifest: the same recordings, their hashed files ready, those not hashed yet not ready.
      b.store.checksumsOf = (id) => (perRecording++, checksumsOf.call(b.store, id));
      let manifest;
      try {
        manifest = (await (await fetch(`${b.url}/api/offload/manifest`)).json()) as {
          recordings: Array<{ id: number; ready: boolean; files: Array<{ kind: string; path: string; bytes: number | null; sha256: string | null }> }>;
          ready: number;
          pending_checksums: number;
          bytes_ready: number;
        };
      } finally {
        b.store.checksumsOf = checksumsOf;
      }
      assert.equal(perRecording, 0, 'no checksum query per recording in the manifest either');
      assert.deepEqual(manifest.recordings.map((r) => r.id), waiting.map((m) => m.id));
      const hashed = waiting.filter((m) => m.bytes !== 5000 + made.indexOf(m));
      assert.equal(manifest.ready, hashed.length);
      assert.equal(manifest.pending_checksums, 200 - hashed.length);
      assert.equal(manifest.bytes_ready, hashed.reduce((n, m) => n + m.bytes, 0));
      const i = made.indexOf(hashed[0]!);
      assert.deepEqual(manifest.recordings.find((r) => r.id === hashed[0]!.id)!.files, [
        { kind: 'video', path: `bulk/r${i}.ts`, bytes: 100_000 + i, sha256: 'a'.repeat(64) },
        { kind: 'csv', path: `bulk/r${i}.csv`, bytes: 700 + i, sha256: 'b'.repeat(64) },
        { kind: 'sidecar', path: `bulk/r${i}.json`, bytes: 30, sha256: 'c'.repeat(64) },
      ]);
      const unhashed = manifest.recordings.find((r) => r.id === made[0]!.id)!; // r0: no checksums stored yet
      assert.equal(unhashed.ready, false);
      assert.deepEqual(unhashed.files.map((f) => [f.kind, f.bytes, f.sha256]), [['video', null, null], ['csv', null, null], ['sidecar', null, null]]);
    } finally {
      await b.close();
    }
  });

  it('130 000 waiting recordings: counted, summed and the oldest found without loading them (their finish times spread into Math.min overflowed the stack)', async () => {
    const b = await startOffloadBox({ offload: { stale_after_hours: 24 } });
    try {
      const n = 130_000;
      b.store.transaction(() => {
        for (let i = 0; i < n; i++) {
          const id = b.store.createRecording({ trialId: null, cameraId: 'cam0', segment: i, path: `bulk/r${i}.ts`, csvPath: `bulk/r${i}.csv`, codec: 'h264', encoder: 'libx264', width: 320, height: 240, fpsNominal: 15, clock: 'monotonic', mono0Us: 0, wall0Us: 0, triggerSource: null, triggerMonoUs: null }, false);
          b.store.finishRecording(id, { state: 'complete', frames: 10, dropped: 0, bytes: 1000 + (i % 7), reason: null }, false);
        }
      });
      const bytes = Array.from({ length: n }, (_, i) => 1000 + (i % 7)).reduce((a, x) => a + x, 0);
      // The oldest to finish is not the first by id (a long recording of an earlier trial finishes late).
      const oldest = Date.now() - 30 * 3_600_000;
      b.db.prepare('UPDATE recordings SET stopped_at = ? WHERE id = 77777').run(new Date(oldest).toISOString());
      const heap0 = process.memoryUsage().heapUsed;
      const t0 = performance.now();
      const st = b.box.status().offload;
      const ms = performance.now() - t0;
      console.log(`# offload status of ${n} waiting recordings: ${ms.toFixed(0)} ms, heap ${((process.memoryUsage().heapUsed - heap0) / 1048576).toFixed(1)} MiB`);
      assert.equal(st.pending_recordings, n);
      assert.equal(st.bytes_pending, bytes);
      assert.equal(st.recordings.length, 100);
      assert.deepEqual(st.recordings.map((r) => r.recording_id), Array.from({ length: 100 }, (_, i) => i + 1));
      assert.match(String(st.warning), /^backup stale: 130000 recording\(s\) not offloaded, nothing confirmed for 30 h/);
      b.clock.offsetMs = -7 * 3_600_000; // 23 h after the oldest finished: not stale yet
      assert.equal(b.box.status().offload.warning, null);
      b.box.offload.checkStale(); // the minute's check, which threw in a timer before
    } finally {
      await b.close();
    }
  });
});

describe('offload telemetry over SSE', () => {
  it('offload_telemetry comes periodically on /api/events with pending, bytes, last success and error, stale; never journaled', async () => {
    const b = await startOffloadBox({ telemetry: { emit_interval_ms: 500, offload_interval_ms: 300 }, offload: { stale_after_hours: 1 } });
    const ac = new AbortController();
    try {
      const [id] = await b.trial('t1', 800);
      const files = filesOf(b, id!);
      const bytes = files.reduce((n, f) => n + f.bytes, 0);
      const samples: Array<{ at: number; data: Record<string, unknown> }> = [];
      const ev = await fetch(`${b.url}/api/events`, { signal: ac.signal });
      assert.equal(ev.status, 200);
      void (async () => {
        const dec = new TextDecoder();
        let buf = '';
        for await (const chunk of ev.body as unknown as AsyncIterable<Uint8Array>) {
          buf += dec.decode(chunk, { stream: true });
          for (let i; (i = buf.indexOf('\n\n')) >= 0; ) {
            const line = buf.slice(0, i).split('\n').find((l) => l.startsWith('data: '));
            buf = buf.slice(i + 2);
            const m = line ? (JSON.parse(line.slice(6)) as { status: string; data: Record<string, unknown> }) : null;
            if (m?.status === 'offload_telemetry') samples.push({ at: Date.now(), data: m.data });
          }
        }
      })().catch(() => undefined);
      /** The next sample (after those seen so far) that satisfies pred. */
      const next = async (what: string, pred: (d: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> => {
        const from = samples.length;
        await until(what, () => samples.slice(from).some((s) => pred(s.data)), 10_000);
        return samples.slice(from).find((s) => pred(s.data))!.data;
      };

      let d = await next('a first sample', () => true);
      assert.equal(d.mode, 'pull');
      assert.equal(d.pending_recordings, 1);
      assert.equal(d.bytes_pending, bytes);
      assert.equal(d.last_success_at, null);
      assert.equal(d.last_error, null);
      assert.equal(d.stale, false);
      assert.equal(d.warning, null);
      assert.equal(d.failed_recordings, 0);
      assert.equal('recordings' in d, false, 'a sample, not the per-recording list');
      // Periodic: more samples come with nothing happening in between.
      const n0 = samples.length;
      await until('two more samples', () => samples.length >= n0 + 2, 10_000);
      const gaps = samples.slice(-3).map((s, i, a) => (i ? s.at - a[i - 1]!.at : 0)).slice(1);
      assert.ok(gaps.every((g) => g >= 150 && g < 3000), `about every 300 ms: ${gaps.join(', ')}`);

      // No backup for longer than stale_after_hours: the samples say stale, with the reason.
      b.clock.offsetMs = 1.5 * 3_600_000;
      d = await next('a stale sample', (x) => x.stale === true);
      assert.match(String(d.warning), /backup stale: 1 recording\(s\) not offloaded/);

      // A pull whose copy does not match: the samples carry the error and the failed recording.
      const bad = Object.fromEntries(files.map((f) => [f.path, f.sha256]));
      bad[files[0]!.path] = 'f'.repeat(64);
      const r409 = await fetch(`${b.url}/api/recordings/${id}/offloaded`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sha256: bad }) });
      assert.equal(r409.status, 409);
      d = await next('a sample with the error', (x) => x.last_error !== null);
      assert.match(String((d.last_error as { message: string }).message), /not marked offloaded/);
      assert.equal(d.failed_recordings, 1);

      // A verified pull: nothing waits, a last success, not stale.
      const ok = await fetch(`${b.url}/api/recordings/${id}/offloaded`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sha256: Object.fromEntries(files.map((f) => [f.path, f.sha256])) }) });
      assert.equal(ok.status, 200);
      d = await next('a sample after the verified copy', (x) => x.pending_recordings === 0);
      assert.equal(d.bytes_pending, 0);
      assert.equal(d.stale, false);
      assert.equal(d.failed_recordings, 0);
      assert.ok(typeof d.last_success_at === 'string' && Date.parse(d.last_success_at) > 0);

      const journaled = b.db.prepare("SELECT COUNT(*) AS n FROM events WHERE name = 'offload_telemetry'").get() as { n: number };
      assert.equal(journaled.n, 0, 'sampled, not journaled');
    } finally {
      ac.abort();
      await b.close();
    }
  });
});
