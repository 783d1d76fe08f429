// Sync pulses in `rigcam serve` (issue 18): the real service with a `sync` input (gpiomon stand-in replaying a
// train, restamped at replay time) and a sync output (gpioset stand-in); edges read back through the API, paged;
// sync health in /api/status and on the page (Chromium).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium } from 'playwright-core';
import { openStoreReadonly } from '../../src/storage/open-store.ts';
import { trainIntervals } from '../../src/triggers/gpio/index.ts';
import { rigcamBin } from '../helpers/cli.ts';
import { STANDINS, sleep, until, writePulseFixture } from '../helpers/sync-train.ts';
import { tmpDir } from '../helpers/tmp.ts';

const CHROMIUM = '/usr/bin/chromium';

interface Edge {
  id: number;
  run_id: number;
  direction: 'in' | 'out';
  line: number;
  active: boolean;
  mono_us: number;
  clock: string;
  session_id: number | null;
  trial_id: number | null;
  host: string;
  boot_id: string;
}

describe('rigcam serve with sync lines', () => {
  const dir = tmpDir('rigcam-sync-serve-');
  let child: ChildProcess;
  let url = '';
  let out = '';

  before(async () => {
    // 150 pulses of 100-1000 ms replayed 4× faster: about 20 s of pulses.
    const next = trainIntervals({ pattern: 'random', min_interval_ms: 100, max_interval_ms: 1000, period_ms: 1000 }, 11);
    let t = 1_000_000_000_000n;
    const onsets = Array.from({ length: 150 }, () => (t += BigInt(next()) * 1_000_000n));
    writePulseFixture(path.join(dir, 'train.txt'), 5, onsets);
    const cfg = path.join(dir, 'rigcam.yaml');
    writeFileSync(
      cfg,
      [
        `data_dir: ${dir}`,
        'http: { port: 0 }',
        'cameras: [{ id: cam0, width: 320, height: 240, fps: 15, gop_seconds: 0.5, bitrate_kbps: 300 }]',
        'gpio:',
        '  inputs: [{ line: 5, mode: sync }]',
        '  outputs: { sync_out: { line: 21, min_interval_ms: 1000, max_interval_ms: 1500, pulse_ms: 300, seed: 5 } }',
      ].join('\n') + '\n',
    );
    child = spawn(process.execPath, [rigcamBin, 'serve', '--config', cfg], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        PATH: `${STANDINS}:${process.env.PATH}`,
        GPIOD_STANDIN_VERSION: '2',
        GPIOD_STANDIN_BOARD: 'rpi4',
        GPIOD_STANDIN_STATE_DIR: dir,
        GPIOMON_FIXTURE: path.join(dir, 'train.txt'),
        GPIOMON_SPEED: '4',
        GPIOMON_RESTAMP: 'now',
        GPIOSET_RECORD: path.join(dir, 'gpioset.jsonl'),
      },
    });
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    url = await until('rigcam serving', () => /"url":"(http:\/\/127\.0\.0\.1:\d+)\/"/.exec(out)?.[1], 30_000);
    // The API answers before the cameras are ready.
    for (const end = Date.now() + 60_000; ; await sleep(200)) {
      const s = (await (await fetch(`${url}/api/status`)).json()) as { cameras: Array<{ state: string }> };
      if (s.cameras[0]?.state === 'ready') break;
      if (Date.now() > end) throw new Error(`camera not ready: ${out.slice(-2000)}`);
    }
  });

  after(async () => {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('close', r));
  });

  const get = async <T>(p: string): Promise<{ status: number; body: T }> => {
    const r = await fetch(url + p);
    return { status: r.status, body: (await r.json()) as T };
  };

  it('stores the input train with its kernel times and the train out; the API pages through every edge', async () => {
    const started = await fetch(`${url}/api/trials/start`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ session: 'syncs' }) });
    assert.equal(started.status, 200);
    await until('40 edges in and 4 out', () => {
      if (!existsSync(path.join(dir, 'rigcam.db'))) return false;
      const s = openStoreReadonly(path.join(dir, 'rigcam.db'));
      try {
        return s.syncEdgesPage(0, 1000, { direction: 'in' }).length >= 40 && s.syncEdgesPage(0, 1000, { direction: 'out' }).length >= 4;
      } finally {
        s.close();
      }
    }, 60_000);
    const stopped = await fetch(`${url}/api/trials/stop`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(stopped.status, 200);

    // Page through everything 7 at a time.
    const paged: Edge[] = [];
    let since = 0;
    for (;;) {
      const { status, body } = await get<{ edges: Edge[]; next_since: number | null }>(`/api/sync/edges?since=${since}&limit=7`);
      assert.equal(status, 200);
      paged.push(...body.edges);
      if (body.next_since === null) break;
      assert.equal(body.next_since, body.edges.at(-1)!.id);
      since = body.next_since;
    }
    const ids = paged.map((e) => e.id);
    assert.deepEqual(ids, [...ids].sort((a, b) => a - b), 'in id order');
    assert.equal(new Set(ids).size, ids.length, 'no edge twice');
    const s = openStoreReadonly(path.join(dir, 'rigcam.db'));
    const stored = s.syncEdgesPage(0, 100_000);
    s.close();
    assert.deepEqual(paged.map((e) => e.id), stored.filter((e) => e.id <= ids.at(-1)!).map((e) => e.id));
    const ins = paged.filter((e) => e.direction === 'in');
    assert.ok(ins.every((e) => e.line === 5 && e.clock === 'gpio-kernel' && typeof e.active === 'boolean'));
    // Restamped at replay: onset to onset as the train's intervals (4× faster), within the replay's timer slack.
    const onsets = ins.filter((e) => e.active).map((e) => e.mono_us);
    const next = trainIntervals({ pattern: 'random', min_interval_ms: 100, max_interval_ms: 1000, period_ms: 1000 }, 11);
    next();
    for (let i = 1; i < onsets.length; i++) {
      const want = (next() * 1000) / 4;
      assert.ok(Math.abs(onsets[i]! - onsets[i - 1]! - want) < 60_000, `interval ${i}: ${onsets[i]! - onsets[i - 1]!} µs, want ${want}`);
    }
    // Edges while the trial recorded carry its session and trial.
    assert.ok(ins.some((e) => e.session_id !== null && e.trial_id !== null), 'edges during the trial name it');
    const outs = paged.filter((e) => e.direction === 'out');
    assert.ok(outs.length >= 4 && outs.every((e) => e.line === 21 && e.clock === 'userspace-set'));
    assert.equal(new Set(paged.map((e) => e.run_id)).size, 1);

    // Filters, and bad queries refused by their field.
    const onlyOut = await get<{ edges: Edge[] }>('/api/sync/edges?direction=out&line=21');
    assert.ok(onlyOut.body.edges.length >= 4 && onlyOut.body.edges.every((e) => e.direction === 'out'));
    for (const [q, field] of [
      ['limit=0', 'query.limit'],
      ['limit=10001', 'query.limit'],
      ['since=-1', 'query.since'],
      ['direction=sideways', 'query.direction'],
      ['line=600', 'query.line'],
      ['sinec=3', 'query.sinec'],
    ] as const) {
      const r = await get<{ ok: boolean; field: string }>(`/api/sync/edges?${q}`);
      assert.equal(r.status, 400, q);
      assert.equal(r.body.field, field, q);
    }
  });

  it('status and page show sync health: pulses seen and the last edge per line', async () => {
    const { body } = await get<{ sync: { configured: boolean; lines: Array<{ direction: string; line: number; pulses: number; last_age_s: number }> } }>('/api/status');
    assert.equal(body.sync.configured, true);
    const inLine = body.sync.lines.find((l) => l.direction === 'in' && l.line === 5)!;
    const outLine = body.sync.lines.find((l) => l.direction === 'out' && l.line === 21)!;
    assert.ok(inLine.pulses >= 20 && outLine.pulses >= 2, JSON.stringify(body.sync));
    assert.ok(inLine.last_age_s >= 0 && inLine.last_age_s < 30, `last edge ${inLine.last_age_s} s ago`);
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing (apt-get install chromium)`);
    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
    try {
      const page = await browser.newPage();
      await page.goto(url);
      const span = page.getByTestId('sync');
      await span.waitFor({ state: 'visible', timeout: 15_000 });
      await page.waitForFunction(() => /sync: in 5: \d+ pulses, last [\d.]+ s ago · out 21: \d+ pulses/.test(document.querySelector('#sync')?.textContent ?? ''), null, { timeout: 15_000 });
    } finally {
      await browser.close();
    }
    await sleep(0);
  });
});
