import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, openSync, readdirSync, readSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { applyRetention } from '../../src/disk/retention.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { BoxRuntime } from '../../src/runtime/box-runtime.ts';
import { EventBus } from '../../src/runtime/event-bus.ts';
import { ChecksumExtension } from '../../src/runtime/extensions/checksums.ts';
import { sha256File } from '../../src/storage/checksums.ts';
import { openDatabase } from '../../src/storage/database.ts';
import { openStoreWithRecovery } from '../../src/storage/open-store.ts';
import { Store } from '../../src/storage/store.ts';
import { buffersGrowth } from '../helpers/buffers.ts';
import { runCli } from '../helpers/cli.ts';
import { startHttpBox, type HttpBox } from '../helpers/box.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { waitForStatus, sleep, type SeenStatus } from '../helpers/wait-status.ts';

/** sha256sum(1): an implementation independent of the one under test. */
const sha256sum = (file: string): string => execFileSync('sha256sum', [file]).toString().split(' ')[0]!;

type FileSum = { kind: string; path: string; bytes: number; sha256: string };

/** Record one trial over HTTP; resolves with the `checksums` statuses of its recordings. */
async function trial(b: HttpBox, session: string, label: string, ms = 1200): Promise<SeenStatus[]> {
  const start = await b.api('/api/trials/start', { json: { session, label } });
  assert.equal(start.status, 200, await start.clone().text());
  const ids = ((await start.json()) as { data: { recordings: Array<{ recording_id: number }> } }).data.recordings.map((r) => r.recording_id);
  const sums = Promise.all(ids.map((id) => b.waitStatus('checksums', (m) => m.data.recording_id === id, 30_000)));
  await sleep(ms);
  assert.equal((await b.api('/api/trials/stop', { json: {} })).status, 200);
  return sums;
}

function flipByte(file: string, at: number): void {
  const fd = openSync(file, 'r+');
  const buf = Buffer.alloc(1);
  readSync(fd, buf, 0, 1, at);
  buf[0] = buf[0]! ^ 0xff;
  writeSync(fd, buf, 0, 1, at);
  closeSync(fd);
}

describe('checksums at the source, verified pull offload, verified retention', () => {
  let b: HttpBox;
  before(async () => {
    b = await startHttpBox({ extra: { recording: { stop_wait_ms: 1000, remux_mp4: true, keep_ts: true } } });
  });
  after(async () => b.close());

  it('hashes video, CSV, sidecar and the .mp4 when the recording closes and is remuxed; the hashes are the files\'', async () => {
    const [st] = await trial(b, 'sums', 'first');
    const id = st!.data.recording_id as number;
    // The .mp4 is hashed once the remux is done: wait for the second `checksums` status if it is not in yet.
    let files = st!.data.files as FileSum[];
    if (!files.some((f) => f.kind === 'mp4')) files = (await b.waitStatus('checksums', (m) => m.data.recording_id === id && (m.data.files as FileSum[]).some((f) => f.kind === 'mp4'), 30_000)).data.files as FileSum[];
    assert.deepEqual(files.map((f) => f.kind).sort(), ['csv', 'mp4', 'sidecar', 'video']);
    const rec = b.store.recording(id)!;
    assert.deepEqual(Object.fromEntries(files.map((f) => [f.kind, f.path])), { video: rec.path, csv: rec.csv_path, sidecar: rec.path.replace(/\.ts$/, '.json'), mp4: rec.mp4_path });
    for (const f of files) assert.equal(f.sha256, sha256sum(path.join(b.root, f.path)), `${f.kind} sha256 equals sha256sum's`);
    const stored = b.store.checksumsOf(id);
    assert.deepEqual(stored.map((s) => s.sha256).sort(), files.map((f) => f.sha256).sort(), 'the database holds what the status said');
  });

  it('the manifest lists finished, not yet offloaded recordings with sizes and hashes (json and tsv)', async () => {
    const m = (await (await b.api('/api/offload/manifest')).json()) as { recordings_root: string; recordings: Array<{ id: number; ready: boolean; files: FileSum[] }>; ready: number };
    assert.equal(m.recordings_root, b.root);
    assert.ok(m.recordings.length >= 1 && m.recordings.every((r) => r.ready));
    for (const r of m.recordings) for (const f of r.files) {
      assert.equal(f.sha256, sha256sum(path.join(b.root, f.path)));
      assert.equal(f.bytes, statSync(path.join(b.root, f.path)).size);
    }
    const tsv = await (await b.api('/api/offload/manifest?format=tsv')).text();
    const lines = tsv.trim().split('\n');
    assert.equal(lines[0], `# recordings_root=${b.root}`);
    assert.equal(lines.length - 1, m.recordings.reduce((n, r) => n + r.files.length, 0));
    assert.equal((await b.api('/api/offload/manifest?format=xml')).status, 400, 'a bad format is refused');
  });

  it('marks offloaded only when every file\'s hash matches: a wrong, missing or foreign hash changes nothing', async () => {
    const [st] = await trial(b, 'sums', 'second');
    const id = st!.data.recording_id as number;
    for (let i = 0; i < 300 && b.store.checksumsOf(id).length < 4; i++) await sleep(100); // the .mp4's, after its remux
    const files = b.store.checksumsOf(id);
    assert.equal(files.length, 4);
    const good = Object.fromEntries(files.map((f) => [f.path, f.sha256]));
    const post = (body: unknown): Promise<Response> => b.api(`/api/recordings/${id}/offloaded`, { json: body });
    const unchanged = (): void => {
      const r = b.store.recording(id)!;
      assert.equal(r.offloaded_at, null, 'not marked');
      assert.equal(r.offload_verified_at, null, 'not verified');
    };
    // one byte off in the CSV's hash
    const csv = files.find((f) => f.kind === 'csv')!;
    const bad = { ...good, [csv.path]: csv.sha256.replace(/^./, (c) => (c === '0' ? '1' : '0')) };
    let r = await post({ sha256: bad });
    assert.equal(r.status, 409);
    const body = (await r.json()) as { mismatches: string[] };
    assert.equal(body.mismatches.length, 1);
    assert.match(body.mismatches[0]!, new RegExp(csv.path.replace(/\./g, '\\.')));
    unchanged();
    // a file not confirmed
    const { [files[0]!.path]: _gone, ...partial } = good;
    void _gone;
    r = await post({ sha256: partial });
    assert.equal(r.status, 409);
    assert.match(((await r.json()) as { error: string }).error, /not confirmed/);
    unchanged();
    // a path that is not the recording's, a malformed hash, unknown fields, not JSON
    assert.equal((await post({ sha256: { ...good, '../etc/passwd': csv.sha256 } })).status, 400);
    assert.equal((await post({ sha256: { ...good, [csv.path]: 'abc' } })).status, 400);
    assert.equal((await post({ sha256: good, force: true })).status, 400);
    assert.equal((await b.api(`/api/recordings/${id}/offloaded`, { method: 'POST', body: JSON.stringify({ sha256: good }) })).status, 415);
    assert.equal((await b.api('/api/recordings/999999/offloaded', { json: { sha256: good } })).status, 404);
    unchanged();
    // all match (upper case hex is the same hash)
    r = await post({ sha256: Object.fromEntries(Object.entries(good).map(([k, v]) => [k, v.toUpperCase()])) });
    assert.equal(r.status, 200, await r.clone().text());
    const marked = b.store.recording(id)!;
    assert.ok(marked.offloaded_at && marked.offload_verified_at);
    const m = (await (await b.api('/api/offload/manifest')).json()) as { recordings: Array<{ id: number }> };
    assert.ok(!m.recordings.some((x) => x.id === id), 'an offloaded recording leaves the manifest');
  });

  it('rechecks on the box: GET checksums?recheck=true and `rigcam verify` name the file that changed', async () => {
    const [st] = await trial(b, 'sums', 'third');
    const id = st!.data.recording_id as number;
    const okCheck = (await (await b.api(`/api/recordings/${id}/checksums?recheck=true`)).json()) as { ok: boolean; files: unknown[] };
    assert.equal(okCheck.ok, true);
    const cli = await runCli(['verify', String(id), '--data', b.config.data_dir]);
    assert.equal(cli.code, 0, cli.stdout + cli.stderr);
    assert.match(cli.stdout, /SHA-256 of [34] file\(s\) match/);
    const rec = b.store.recording(id)!;
    const sidecar = path.join(b.root, rec.path.replace(/\.ts$/, '.json'));
    flipByte(sidecar, 10);
    const bad = (await (await b.api(`/api/recordings/${id}/checksums?recheck=1`)).json()) as { ok: boolean; problems: string[] };
    assert.equal(bad.ok, false);
    assert.equal(bad.problems.length, 1);
    assert.match(bad.problems[0]!, /sidecar .*\.json: stored sha256/);
    const cli2 = await runCli(['verify', String(id), '--data', b.config.data_dir]);
    assert.equal(cli2.code, 1, cli2.stdout + cli2.stderr);
    assert.match(cli2.stdout + cli2.stderr, /checksum: sidecar/);
    flipByte(sidecar, 10); // restored
    assert.equal(((await (await b.api(`/api/recordings/${id}/checksums?recheck=true`)).json()) as { ok: boolean }).ok, true);
    assert.equal((await b.api(`/api/recordings/${id}/checksums?recheck=yes`)).status, 400);
  });

  it('retention with require_verified_offload deletes only verified offloads; a hand mark is not enough', async () => {
    const ids = b.store.finishedOnBox().map((r) => r.id);
    const unverified = ids.find((i) => !b.store.recording(i)!.offloaded_at)!;
    b.store.markOffloaded([unverified]); // `rigcam recordings offloaded ID`: no checksum seen
    let free = 0;
    const common = { store: b.store, root: b.root, log: silentLogger(), keepFreeBytes: 1, freeBytes: async () => free };
    const deleted = await applyRetention({ ...common, verifiedOnly: true });
    const verified = ids.filter((i) => b.store.recording(i)!.offload_verified_at);
    assert.deepEqual(deleted, verified, 'only the verified offload is deleted');
    assert.equal(b.store.recording(unverified)!.deleted_at, null);
    free = 0;
    const later = await applyRetention({ ...common, verifiedOnly: false });
    assert.ok(later.includes(unverified), 'without the requirement a hand mark still counts (as before)');
  });
});

describe('checksums for adopted recordings and off the frame path', () => {
  it('with keep_ts: false the deleted .ts loses its checksum and the .mp4 (now the recording) gains one', async () => {
    const b = await startHttpBox({ extra: { recording: { stop_wait_ms: 1000, remux_mp4: true, keep_ts: false } } });
    try {
      const [st] = await trial(b, 'nots', 'x');
      const id = st!.data.recording_id as number;
      const kinds = (): string[] => b.store.checksumsOf(id).map((c) => c.kind).sort();
      for (let i = 0; i < 300 && kinds().join() !== 'csv,mp4,sidecar'; i++) await sleep(100);
      assert.deepEqual(kinds(), ['csv', 'mp4', 'sidecar']);
      const rec = b.store.recording(id)!;
      assert.match(rec.path, /\.mp4$/);
      for (const c of b.store.checksumsOf(id)) assert.equal(c.sha256, sha256sum(path.join(b.root, c.path)), c.kind);
      const m = (await (await b.api('/api/offload/manifest')).json()) as { recordings: Array<{ id: number; ready: boolean; files: FileSum[] }> };
      const e = m.recordings.find((r) => r.id === id)!;
      assert.equal(e.ready, true);
      assert.deepEqual(e.files.map((f) => f.kind).sort(), ['csv', 'mp4', 'sidecar']);
    } finally {
      await b.close();
    }
  });

  it('a recording adopted after the database was lost is hashed at start', async () => {
    const b = await startHttpBox({});
    const [st] = await trial(b, 'adopt', 'x');
    const before = new Map((st!.data.files as FileSum[]).map((f) => [f.path, f.sha256]));
    const dataDir = b.config.data_dir;
    await b.close();
    for (const ext of ['', '-wal', '-shm']) rmSync(path.join(dataDir, `rigcam.db${ext}`), { force: true });
    const { store, rebuilt } = await openStoreWithRecovery(path.join(dataDir, 'rigcam.db'), b.root, silentLogger());
    assert.equal(rebuilt, 1);
    const id = store.finishedOnBox()[0]!.id;
    assert.equal(store.checksumsOf(id).length, 0, 'an adopted recording starts without checksums');
    const box = new BoxRuntime({ config: { ...b.config, cameras: [] }, store, log: silentLogger(), root: b.root });
    const got = waitForStatus(box, 'checksums', (m) => m.data.recording_id === id, 30_000);
    await box.initialize();
    const files = (await got).data.files as FileSum[];
    await box.shutdown();
    assert.deepEqual(new Map(files.map((f) => [f.path, f.sha256])), before, 'same files, same hashes as at the source');
    store.close();
  });

  it('the start-up backfill over 130 000 finished recordings never holds the event loop long, and queues those lacking checksums', async () => {
    const dir = tmpDir('rigcam-backfill-');
    const db = openDatabase(path.join(dir, 'rigcam.db'));
    const store = new Store(db);
    const lacking: number[] = [];
    store.transaction(() => {
      for (let i = 0; i < 130_000; i++) {
        const id = store.createRecording({ trialId: null, cameraId: 'cam0', segment: i, path: `b/r${i}.ts`, csvPath: `b/r${i}.csv`, codec: 'h264', encoder: 'libx264', width: 320, height: 240, fpsNominal: 15, clock: 'monotonic', mono0Us: 0, wall0Us: 0, triggerSource: null, triggerMonoUs: null }, false);
        store.finishRecording(id, { state: 'complete', frames: 10, dropped: 0, bytes: 1000, reason: null }, false);
        if (i % 43_000 === 7) lacking.push(id); // no checksums (and no files: reported missing)
        else for (const [kind, p] of [['video', `b/r${i}.ts`], ['csv', `b/r${i}.csv`], ['sidecar', `b/r${i}.json`]] as const) store.setChecksum({ recording_id: id, kind, path: p, bytes: 1, sha256: 'a'.repeat(64) });
      }
    });
    const bus = new EventBus();
    const seen: number[] = [];
    bus.on('status', (m) => {
      if (m.status === 'checksums') seen.push(m.data.recording_id as number);
    });
    const ext = new ChecksumExtension({ bus, store, root: dir, log: silentLogger() });
    const h = monitorEventLoopDelay({ resolution: 5 });
    h.enable();
    const t0 = performance.now();
    ext.start();
    const startMs = performance.now() - t0;
    await ext.idle();
    const ms = performance.now() - t0;
    h.disable();
    console.log(`# backfill over 130000 recordings: start() ${startMs.toFixed(1)} ms, all listed and queued in ${ms.toFixed(0)} ms, event loop delay max ${(h.max / 1e6).toFixed(0)} ms`);
    assert.deepEqual(seen, lacking, 'every recording lacking checksums, and only those, in order');
    assert.ok(startMs < 50, `start() held the loop ${startMs.toFixed(0)} ms`);
    assert.ok(h.max / 1e6 < 500, `the backfill held the event loop ${(h.max / 1e6).toFixed(0)} ms`);
    await ext.stop();
    db.close();
  });

  it('hashing 256 MB never holds the event loop for long', async () => {
    const dir = tmpDir('rigcam-hash-');
    const file = path.join(dir, 'big.bin');
    const chunk = Buffer.alloc(16 * 1024 * 1024, 7);
    const fd = openSync(file, 'w');
    for (let i = 0; i < 16; i++) writeSync(fd, chunk);
    closeSync(fd);
    const h = monitorEventLoopDelay({ resolution: 5 });
    h.enable();
    let turns = 0;
    const ticker = setInterval(() => turns++, 1);
    const t0 = performance.now();
    const r = await sha256File(file);
    const ms = performance.now() - t0;
    clearInterval(ticker);
    h.disable();
    const expect = createHash('sha256');
    for (let i = 0; i < 16; i++) expect.update(chunk);
    assert.equal(r.sha256, expect.digest('hex'));
    assert.equal(r.bytes, 256 * 1024 * 1024);
    const maxMs = h.max / 1e6;
    console.log(`# sha256 of 256 MB: ${ms.toFixed(0)} ms, ${turns} timer turns, event loop delay max ${maxMs.toFixed(1)} ms, p99 ${(h.percentile(99) / 1e6).toFixed(1)} ms`);
    // Hashed in one turn, the loop would be held for the whole hash (no timer turn, delay = the hash's time); each
    // turn of ours hashes 256 KiB. Bounds are relative: on this shared machine the scheduler alone pauses us ~100 ms.
    assert.ok(turns >= 50, `only ${turns} timer turns ran while hashing for ${ms.toFixed(0)} ms`);
    assert.ok(maxMs < ms / 4, `event loop held ${maxMs.toFixed(1)} ms of a ${ms.toFixed(0)} ms hash`);
    writeFileSync(file, '');
  });

  it('hashing reads into one buffer sized to the file, not a new buffer per read', async () => {
    const dir = tmpDir('rigcam-hashbuf-');
    const big = path.join(dir, 'long.ts');
    const small = path.join(dir, 'short.csv');
    const fd = openSync(big, 'w');
    for (let i = 0; i < 8; i++) writeSync(fd, Buffer.alloc(4 * 1024 * 1024, i));
    closeSync(fd);
    writeFileSync(small, 'x'.repeat(10_000));
    // What a hash leaves to the collector (a read stream: 256 KiB per read, 128 reads here).
    const grows = (file: string): Promise<number> =>
      buffersGrowth(async () => {
        const r = await sha256File(file);
        assert.equal(r.sha256, sha256sum(file));
        assert.equal(r.bytes, statSync(file).size);
      });
    const bigGrowth = await grows(big);
    const smallGrowth = await grows(small);
    console.log(`# buffers while hashing: 32 MiB file +${(bigGrowth / 1024).toFixed(0)} KiB, 10 kB file +${(smallGrowth / 1024).toFixed(0)} KiB`);
    assert.ok(bigGrowth <= 512 * 1024, `hashing 32 MiB left ${(bigGrowth / 1048576).toFixed(1)} MiB of read buffers`);
    assert.ok(smallGrowth <= 32 * 1024, `hashing a 10 kB file took ${(smallGrowth / 1024).toFixed(0)} KiB of buffers`);
  });

  it('an aborted hash rejects and closes its file', async () => {
    const dir = tmpDir('rigcam-hashabort-');
    const file = path.join(dir, 'long.ts');
    writeFileSync(file, Buffer.alloc(64 * 1024 * 1024, 1));
    const fds = (): number => readdirSync('/proc/self/fd').length;
    const before = fds();
    const ac = new AbortController();
    const hashing = sha256File(file, ac.signal);
    setTimeout(() => ac.abort(), 5);
    await assert.rejects(hashing, (e: Error) => e.name === 'AbortError');
    assert.equal(fds(), before, 'the file is closed');
    await assert.rejects(sha256File(file, ac.signal), (e: Error) => e.name === 'AbortError', 'already aborted: not even opened');
    assert.equal(fds(), before);
    writeFileSync(file, '');
  });
});
