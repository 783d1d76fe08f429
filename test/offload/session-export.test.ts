import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, statSync, watch, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { writeTar } from '../../src/api/tar.ts';
import { sessionDocumentText } from '../../src/storage/session-export.ts';
import { startHttpBox, type HttpBox } from '../helpers/box.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { sleep } from '../helpers/wait-status.ts';

const sha256sum = (file: string): string => execFileSync('sha256sum', [file]).toString().split(' ')[0]!;

const LABEL = 'odour A, "quoted" — ünïcödé 🐭 \\ back';
const MARK = 'lick, "left" ✓';
const META = { subject: 'm"42",x', note: 'naïve; a,b' };

type Doc = {
  format: string;
  session: { name: string; metadata: Record<string, unknown> };
  trials: Array<{ number: number; label: string; metadata: Record<string, unknown>; markers: Array<{ label: string }>; recordings: Array<{ id: number; frames: number; sidecar: { frames: number } | null; checksums: Array<{ kind: string; path: string; sha256: string }> }> }>;
};

describe('session export: session.json beside the recordings and a tar of the session folder', () => {
  let b: HttpBox;
  let sessionId: number;
  const session = 'export-1';
  before(async () => {
    b = await startHttpBox({ cameras: 2 });
    for (const [label, mark] of [[LABEL, MARK], ['plain', null]] as const) {
      const start = await b.api('/api/trials/start', { json: { session, label, metadata: META } });
      assert.equal(start.status, 200, await start.clone().text());
      const ids = ((await start.json()) as { data: { recordings: Array<{ recording_id: number }> } }).data.recordings.map((r) => r.recording_id);
      const sums = Promise.all(ids.map((id) => b.waitStatus('checksums', (m) => m.data.recording_id === id, 30_000)));
      await sleep(700);
      if (mark) assert.equal((await b.api('/api/markers', { json: { label: mark } })).status, 200);
      await sleep(500);
      assert.equal((await b.api('/api/trials/stop', { json: {} })).status, 200);
      await sums;
    }
    sessionId = b.store.sessionByName(session)!.id;
  });
  after(async () => b.close());

  const docPath = (): string => path.join(b.root, session, 'session.json');

  it('writes session.json after every trial, atomically, with labels, metadata, markers, sidecar summaries and checksums', async () => {
    // The last rewrite follows the last checksums status: wait until it has them all.
    let doc: Doc | null = null;
    for (let i = 0; i < 100; i++) {
      doc = JSON.parse(readFileSync(docPath(), 'utf8')) as Doc;
      if (doc.trials.length === 2 && doc.trials.every((t) => t.recordings.length === 2 && t.recordings.every((r) => r.checksums.length === 3))) break;
      await sleep(100);
    }
    assert.ok(doc);
    assert.equal(doc.format, 'rigcam-session/1');
    assert.equal(doc.session.name, session);
    assert.deepEqual(doc.trials.map((t) => t.label), [LABEL, 'plain']);
    assert.deepEqual(doc.trials[0]!.metadata, META);
    assert.deepEqual(doc.trials[0]!.markers.map((m) => m.label), [MARK]);
    for (const t of doc.trials)
      for (const r of t.recordings) {
        assert.equal(r.checksums.length, 3, 'video, csv and sidecar');
        assert.ok(r.frames > 0 && r.sidecar?.frames === r.frames, 'the sidecar summary agrees with the database');
        for (const c of r.checksums) assert.equal(c.sha256, sha256sum(path.join(b.root, c.path)));
      }
    assert.deepEqual(readdirSync(path.join(b.root, session)).filter((n) => /tmp|partial/.test(n)), [], 'no temporary file left');
  });

  it('GET /api/sessions/:id/export: the system tar extracts every file of the folder with the same SHA-256', async () => {
    const res = await b.api(`/api/sessions/${sessionId}/export`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/x-tar');
    const dir = tmpDir('rigcam-export-');
    const tarFile = path.join(dir, 'session.tar');
    writeFileSync(tarFile, Buffer.from(await res.arrayBuffer()));
    const out = path.join(dir, 'x');
    mkdirSync(out);
    execFileSync('tar', ['-xf', tarFile, '-C', out]);
    const onBox = readdirSync(path.join(b.root, session)).sort();
    const extracted = readdirSync(path.join(out, session)).sort();
    assert.deepEqual(extracted, onBox, 'every file of the session folder, and nothing else');
    assert.equal(onBox.filter((n) => /\.(ts|csv|json)$/.test(n)).length, 13, '4 recordings x (ts, csv, json) + session.json');
    for (const n of onBox) if (n !== 'session.json') assert.equal(sha256sum(path.join(out, session, n)), sha256sum(path.join(b.root, session, n)), n);
    const doc = JSON.parse(readFileSync(path.join(out, session, 'session.json'), 'utf8')) as Doc;
    assert.deepEqual(doc.trials.map((t) => t.label), [LABEL, 'plain'], 'labels survive the tar');
    for (const t of doc.trials) for (const r of t.recordings) for (const c of r.checksums) assert.equal(sha256sum(path.join(out, c.path)), c.sha256, `${c.path} as the document says`);
    assert.equal((await b.api('/api/sessions/999999/export')).status, 404);
    assert.equal((await b.api(`/api/sessions/${sessionId}/export?x=1`)).status, 400);
    assert.equal((await b.api('/api/sessions/abc/export')).status, 400);
  });
});

describe('session export under a burst of trials', () => {
  it('coalesces rewrites (fewer than one per trial) and still ends with every trial, its final state and checksums', async () => {
    const b = await startHttpBox({});
    try {
      const session = 'burst';
      const n = 10;
      const first = await b.api('/api/trials/start', { json: { session } });
      assert.equal(first.status, 200);
      const dir = path.join(b.root, session);
      let rewrites = 0;
      // Every rewrite renames a temporary file over session.json.
      const watcher = watch(dir, (_event, name) => name === 'session.json' && rewrites++);
      try {
        const ids: number[] = [];
        for (let i = 1; i <= n; i++) {
          if (i > 1) assert.equal((await b.api('/api/trials/start', { json: { session } })).status, 200);
          await sleep(150);
          const stop = await b.api('/api/trials/stop', { json: {} });
          assert.equal(stop.status, 200);
          ids.push(...((await stop.json()) as { data: { recordings: Array<{ recording_id: number }> } }).data.recordings.map((r) => r.recording_id));
        }
        let doc: Doc | null = null;
        for (let i = 0; i < 100; i++) {
          doc = existsSync(path.join(dir, 'session.json')) ? (JSON.parse(readFileSync(path.join(dir, 'session.json'), 'utf8')) as Doc) : null;
          if (doc?.trials.length === n && doc.trials.every((t) => t.recordings.every((r) => r.checksums.length === 3 && r.sidecar?.frames === r.frames))) break;
          await sleep(100);
        }
        assert.deepEqual(doc?.trials.map((t) => t.number), Array.from({ length: n }, (_, i) => i + 1));
        assert.deepEqual(doc!.trials.flatMap((t) => t.recordings.map((r) => r.id)), ids);
        for (const t of doc!.trials) for (const r of t.recordings) assert.equal(r.checksums.length, 3, `trial ${t.number}: checksums`);
        assert.ok(rewrites >= 1 && rewrites < n, `${rewrites} rewrites for ${n} trials (each trial used to cost two)`);
      } finally {
        watcher.close();
      }
    } finally {
      await b.close();
    }
  });
});

describe('session export of a large session', () => {
  it('spaces rewrites so that they write at most 64 KiB/s on average, and still ends with every trial', async () => {
    const b = await startHttpBox({});
    try {
      const session = 'large';
      const trial = async (): Promise<void> => {
        assert.equal((await b.api('/api/trials/start', { json: { session } })).status, 200);
        await sleep(150);
        assert.equal((await b.api('/api/trials/stop', { json: {} })).status, 200);
      };
      await trial(); // makes the session's folder
      const s = b.store.sessionByName(session)!;
      // 40 trials of 8 KB labels: a document of ~330 KB, ~5 s of the rate.
      for (let i = 0; i < 40; i++) {
        const t = b.store.createTrial({ sessionId: s.id, number: b.store.nextTrialNumber(s.id), label: `${i}`.padEnd(8000, 'x'), triggerSource: 'api', triggerMonoUs: i });
        b.store.setTrialState(t.id, 'complete');
      }
      const dir = path.join(b.root, session);
      const doc = path.join(dir, 'session.json');
      const rewrites: Array<{ at: number; bytes: number }> = [];
      const watcher = watch(dir, (_event, name) => {
        if (name !== 'session.json' || !existsSync(doc)) return;
        const bytes = statSync(doc).size;
        if (rewrites.at(-1)?.bytes !== bytes) rewrites.push({ at: performance.now(), bytes });
      });
      try {
        const end = performance.now() + 9000;
        while (performance.now() < end) await trial(); // each trial changes the document: every rewrite is bigger
        const trials = b.store.trialsPage(s.id, 0, 1000).trials.length;
        for (let i = 0; i < 200 && (JSON.parse(readFileSync(doc, 'utf8')) as Doc).trials.length !== trials; i++) await sleep(100);
        assert.equal((JSON.parse(readFileSync(doc, 'utf8')) as Doc).trials.length, trials, 'the last rewrite has every trial');
        const big = rewrites.filter((r) => r.bytes > 300_000);
        assert.ok(big.length >= 2, `rewrites of the large document: ${JSON.stringify(rewrites)}`);
        for (let i = 1; i < big.length; i++) {
          const gapS = (big[i]!.at - big[i - 1]!.at) / 1000;
          assert.ok(gapS >= (0.9 * big[i - 1]!.bytes) / 65536, `rewrite ${i}: ${gapS.toFixed(2)} s after one of ${big[i - 1]!.bytes} bytes`);
        }
      } finally {
        watcher.close();
      }
    } finally {
      await b.close();
    }
  });
});

describe('session export at shutdown', () => {
  it('a rewrite still waiting for its turn is written when the box stops, with the last trial in it', async () => {
    const b = await startHttpBox({});
    const session = 'at-shutdown';
    let closed = false;
    try {
      for (let i = 0; i < 2; i++) {
        assert.equal((await b.api('/api/trials/start', { json: { session } })).status, 200);
        await sleep(200);
        assert.equal((await b.api('/api/trials/stop', { json: {} })).status, 200);
      }
      // The second trial's rewrite waits out the interval after the first's; stopping the box writes it now.
      await b.close();
      closed = true;
      const doc = JSON.parse(readFileSync(path.join(b.root, session, 'session.json'), 'utf8')) as Doc;
      assert.deepEqual(doc.trials.map((t) => [t.number, t.recordings.length]), [[1, 1], [2, 1]]);
    } finally {
      if (!closed) await b.close();
    }
  });
});

describe('session document in parts', () => {
  it('is one valid JSON document whatever the number of trials (none, one part, several parts)', async () => {
    const b = await startHttpBox({});
    try {
      for (const [name, n] of [['none', 0], ['few', 3], ['many', 12]] as const) {
        const s = b.store.openSession(name, { k: 'v' });
        for (let i = 1; i <= n; i++) {
          const t = b.store.createTrial({ sessionId: s.id, number: i, label: `t${i}, "q"`, triggerSource: 'api', triggerMonoUs: i });
          b.store.addEvent({ kind: 'marker', name: `m${i}`, sessionId: s.id, trialId: t.id, monoUs: i });
        }
        const doc = JSON.parse(await sessionDocumentText(b.store, b.root, b.store.session(s.id)!)) as Doc;
        assert.deepEqual(doc.trials.map((t) => t.number), Array.from({ length: n }, (_, i) => i + 1), name);
        assert.deepEqual(doc.trials.map((t) => t.markers[0]!.label), Array.from({ length: n }, (_, i) => `m${i + 1}`));
        assert.equal(doc.session.metadata.k, 'v');
      }
    } finally {
      await b.close();
    }
  });
});

describe('tar writer', () => {
  it('long and non-ASCII names (pax), empty, multi-chunk and shrunken files extract with the system tar', async () => {
    const dir = tmpDir('rigcam-tar-');
    const long = `${'s'.repeat(64)}/${'s'.repeat(64)}_trial001_${'c'.repeat(32)}_seg01.json`;
    const uni = 'sess/ünï 🐭.txt';
    const big = randomBytes(700_001); // three reads of a reused buffer: out of order or overwritten shows
    const src = path.join(dir, 'src.bin');
    writeFileSync(src, big);
    const tarFile = path.join(dir, 't.tar');
    const sink = createWriteStream(tarFile);
    const closed = once(sink, 'close');
    await writeTar(sink, [
      { name: long, mtimeS: 1_700_000_000, data: Buffer.from('long') },
      { name: uni, mtimeS: 1_700_000_000, data: Buffer.from('uni') },
      { name: 'sess/empty', mtimeS: 1_700_000_000, data: Buffer.alloc(0) },
      { name: 'sess/file.bin', mtimeS: 1_700_000_000, file: src, size: big.length },
      { name: 'sess/shrank.bin', mtimeS: 1_700_000_000, file: src, size: big.length + 700_000 }, // declared larger than it is now
    ]);
    await closed;
    assert.equal(statSync(tarFile).size % 512, 0);
    const out = path.join(dir, 'out');
    mkdirSync(out);
    execFileSync('tar', ['-xf', tarFile, '-C', out]);
    assert.equal(readFileSync(path.join(out, long), 'utf8'), 'long');
    assert.equal(readFileSync(path.join(out, uni), 'utf8'), 'uni');
    assert.equal(readFileSync(path.join(out, 'sess/empty')).length, 0);
    assert.deepEqual(readFileSync(path.join(out, 'sess/file.bin')), big);
    assert.deepEqual(readFileSync(path.join(out, 'sess/shrank.bin')), Buffer.concat([big, Buffer.alloc(700_000)]), 'padded with zeros to its declared size');
  });
});
