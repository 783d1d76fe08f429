// The full version of issue 18's "Done when": two `rigcam serve` boxes on one machine (separate data dirs and ports),
// each recording a test camera and fed the same pulse train through its gpiomon stand-in (both replay the train at
// the same CLOCK_MONOTONIC instants), then `rigcam align` on their databases. Both boxes share this machine's clock,
// so the truth is offset 0 and drift 0 and B's frames on A's clock are B's own capture times; a known offset and
// drift are tested in align.test.ts, where frames are written through the Store on a shifted clock.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { monoNowNs } from '../../src/clock.ts';
import { openStoreReadonly } from '../../src/storage/open-store.ts';
import { readCsv } from '../../src/timing/csv-format.ts';
import { trainIntervals } from '../../src/triggers/gpio/index.ts';
import { rigcamBin, runCli } from '../helpers/cli.ts';
import { STANDINS, sleep, until, writePulseFixture } from '../helpers/sync-train.ts';
import { tmpDir } from '../helpers/tmp.ts';

interface Serve {
  dir: string;
  url: string;
  child: ChildProcess;
  out: () => string;
}

async function serve(name: string, fixture: string, originNs: bigint): Promise<Serve> {
  const dir = tmpDir(`rigcam-align-serve-${name}-`);
  const cfg = path.join(dir, 'rigcam.yaml');
  writeFileSync(
    cfg,
    [`data_dir: ${dir}`, 'http: { port: 0 }', `cameras: [{ id: ${name}cam, width: 320, height: 240, fps: 15, gop_seconds: 0.5, bitrate_kbps: 300 }]`, 'gpio:', '  inputs: [{ line: 5, mode: sync }]'].join('\n') + '\n',
  );
  const child = spawn(process.execPath, [rigcamBin, 'serve', '--config', cfg], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      PATH: `${STANDINS}:${process.env.PATH}`,
      GPIOD_STANDIN_VERSION: '2',
      GPIOD_STANDIN_BOARD: 'rpi4',
      GPIOD_STANDIN_STATE_DIR: dir,
      GPIOMON_FIXTURE: fixture,
      GPIOMON_SPEED: '2',
      GPIOMON_RESTAMP: 'now',
      GPIOMON_RESTAMP_ORIGIN_NS: String(originNs),
    },
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const url = await until(`${name} serving`, () => /"url":"(http:\/\/127\.0\.0\.1:\d+)\/"/.exec(out)?.[1], 60_000);
  return { dir, url, child, out: () => out };
}

async function ready(s: Serve): Promise<void> {
  for (const end = Date.now() + 90_000; ; await sleep(200)) {
    const st = (await (await fetch(`${s.url}/api/status`)).json()) as { cameras: Array<{ state: string }> };
    if (st.cameras[0]?.state === 'ready') return;
    if (Date.now() > end) throw new Error(`camera not ready: ${s.out().slice(-2000)}`);
  }
}

const post = (s: Serve, p: string, body: unknown) => fetch(s.url + p, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

describe('two rigcam serve boxes, one train, rigcam align', () => {
  const boxes: Serve[] = [];
  after(async () => {
    for (const b of boxes) b.child.kill('SIGTERM');
    await Promise.all(boxes.map((b) => new Promise((r) => (b.child.exitCode !== null ? r(null) : b.child.once('close', r)))));
  });

  it('aligns the two boxes (offset 0, drift 0 on one machine) and puts every frame of B on A\'s clock', async () => {
    const fixtureDir = tmpDir('rigcam-align-serve-train-');
    const fixture = path.join(fixtureDir, 'train.txt');
    const next = trainIntervals({ pattern: 'random', min_interval_ms: 100, max_interval_ms: 1000, period_ms: 1000 }, 23);
    let t = 1_000_000_000_000n;
    const onsets = Array.from({ length: 40 }, () => (t += BigInt(next()) * 1_000_000n));
    writePulseFixture(fixture, 5, onsets);
    // The train starts once both boxes are surely up, watching the line and recording (the machine may be loaded).
    const origin = monoNowNs() + 45_000_000_000n;
    boxes.push(...(await Promise.all([serve('a', fixture, origin), serve('b', fixture, origin)])));
    const [a, b] = boxes as [Serve, Serve];
    await Promise.all([ready(a), ready(b)]);
    for (const s of boxes) assert.equal((await post(s, '/api/trials/start', { session: 'rig' })).status, 200);
    for (const s of boxes) await until(`gpiomon of ${s.dir}`, () => existsSync(path.join(s.dir, 'invocations.jsonl')) && readFileSync(path.join(s.dir, 'invocations.jsonl'), 'utf8').includes('"kind":"monitor"'), 40_000);
    assert.ok(monoNowNs() < origin, 'both boxes watch the line before the train starts');
    // Every edge stored on both boxes, then the trials stop.
    for (const s of boxes) {
      await until(`${s.dir}: all ${2 * onsets.length} edges`, () => {
        const st = openStoreReadonly(path.join(s.dir, 'rigcam.db'));
        try {
          return st.syncEdgesPage(0, 1000).length >= 2 * onsets.length;
        } finally {
          st.close();
        }
      }, 90_000);
    }
    await sleep(500);
    for (const s of boxes) assert.equal((await post(s, '/api/trials/stop', {})).status, 200);
    for (const s of boxes) s.child.kill('SIGTERM');
    await Promise.all(boxes.map((s) => new Promise((r) => (s.child.exitCode !== null ? r(null) : s.child.once('close', r)))));

    const r = await runCli(['align', `A=${path.join(a.dir, 'rigcam.db')}`, `B=${path.join(b.dir, 'rigcam.db')}`]);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { boxes: Array<{ name: string; offset_us: number; drift_ppm: number; matched: number; residual_max_us: number; recordings: Array<{ csv: string; aligned_csv: string; frames: number; extrapolated: number }>; skipped: unknown[] }> };
    const fb = report.boxes.find((x) => x.name === 'B')!;
    assert.equal(fb.matched, 40);
    assert.ok(Math.abs(fb.offset_us) < 100, `offset ${fb.offset_us} µs`);
    assert.ok(Math.abs(fb.drift_ppm) < 1, `drift ${fb.drift_ppm} ppm`);
    assert.deepEqual(fb.skipped, []);
    assert.equal(fb.recordings.length, 1);
    const rec = fb.recordings[0]!;
    const recorded = readCsv(readFileSync(rec.csv, 'utf8')).rows;
    const aligned = readCsv(readFileSync(rec.aligned_csv, 'utf8')).rows;
    assert.ok(recorded.length > 100, `${recorded.length} frames recorded`);
    assert.equal(aligned.length, recorded.length);
    assert.equal(rec.frames, recorded.length);
    const periodUs = 1e6 / 15;
    aligned.forEach((row, k) => {
      const err = Math.abs(Number(row.ref_time_s) * 1e6 - Number(recorded[k]!.capture_us));
      assert.ok(err < periodUs, `frame ${k + 1}: ${err} µs off`);
    });
  });
});
