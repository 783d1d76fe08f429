// Sync pulses in and out (issue 18): the real GPIO controller on the gpiod backend spawning the gpiomon / gpioset
// stand-ins (test/standins), the real SyncRecorder writing a real SQLite database.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { monoToWallUs, wallMonoPair } from '../../src/clock.ts';
import { parseConfig } from '../../src/config/load.ts';
import { openDatabase } from '../../src/storage/database.ts';
import { Store } from '../../src/storage/store.ts';
import { trainIntervals, type GpioConfigInput } from '../../src/triggers/gpio/index.ts';
import { sleep, syncLines, until, writePulseFixture } from '../helpers/sync-train.ts';
import { tmpDir } from '../helpers/tmp.ts';

function setup(config: GpioConfigInput, env: Record<string, string>) {
  const dir = tmpDir('rigcam-sync-');
  const store = new Store(openDatabase(path.join(dir, 'rigcam.db')));
  process.once('exit', () => store.close());
  const ctx = { sessionId: null as number | null, trialId: null as number | null };
  return { dir, store, ctx, ...syncLines(store, dir, config, env, () => ctx) };
}

describe('sync input (mode sync)', () => {
  it('stores every edge as gpiomon stamped it (no debounce by default), with run, boot and session', async (t) => {
    // The real capture's line 17 holds three rising edges in a row (a falling edge the kernel missed): all three are
    // edges the kernel reported, so all three are stored; a trigger input would have kept one.
    const s = setup({ inputs: [{ line: 17, mode: 'sync' }] }, { GPIOD_STANDIN_VERSION: '2', GPIOMON_FIXTURE: 'v2/gpiomon-beagley-ai-line17-duplicate-rising.txt', GPIOMON_SPEED: '4' });
    t.after(() => s.stop());
    s.ctx.sessionId = 7;
    await s.start();
    const edges = await until('6 edges', () => (s.edges('in').length >= 6 ? s.edges('in') : undefined));
    await sleep(300);
    assert.deepEqual(
      s.edges('in').map((e) => [e.line, e.active, e.mono_us, e.clock, e.session_id]),
      [
        [17, 0, 1127083906, 'gpio-kernel', 7],
        [17, 1, 1127094037, 'gpio-kernel', 7],
        [17, 1, 1127094043, 'gpio-kernel', 7],
        [17, 1, 1127094052, 'gpio-kernel', 7],
        [17, 0, 1127829232, 'gpio-kernel', 7],
        [17, 1, 1127834181, 'gpio-kernel', 7],
      ],
    );
    // Asked of gpiomon without a debounce period.
    const runs = readFileSync(path.join(s.dir, 'invocations.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { kind: string; args: string[] });
    const monitor = runs.find((r) => r.kind === 'monitor')!;
    assert.ok(!monitor.args.includes('--debounce-period'), monitor.args.join(' '));
    const run = s.store.syncRun(edges[0]!.run_id)!;
    assert.equal(run.boot_id, readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim());
    assert.equal(run.pid, process.pid);
    assert.deepEqual(JSON.parse(run.time_sync!), { synchronized: true, offset_us: 12, tool: 'chronyc' });
    assert.deepEqual(JSON.parse(run.config).inputs, [{ line: 17, active_low: false, debounce_ms: 0, label: null }]);
    assert.equal(edges[0]!.host, run.host);
    // Health: pulses (active edges) and the last edge of the newest run.
    assert.deepEqual(s.store.syncHealth(), [{ run_id: run.id, direction: 'in', line: 17, edges: 6, pulses: 4, last_mono_us: 1127834181 }]);
  });

  it('a debounce the wiring needs: rigcam debounces raw edges (libgpiod 2), the edge keeps its interrupt time', async (t) => {
    const s = setup({ inputs: [{ line: 16, mode: 'sync', active_low: true, debounce_ms: 1 }] }, { GPIOD_STANDIN_VERSION: '2', GPIOMON_FIXTURE: 'v2/gpiomon-rk3328-line16-bounce.txt', GPIOMON_SPEED: '1' });
    t.after(() => s.stop());
    await s.start();
    await until('edges', () => s.edges('in').length > 0);
    await sleep(500);
    // The recorded button (pulled up, active low): two bursts of bounces that end where the line was (high), then one
    // clean falling edge: that edge alone, at the time its interrupt stamped it (the kernel's own debounce would
    // stamp it a period and a tick later).
    assert.deepEqual(s.edges('in').map((e) => [e.active, e.mono_us]), [[1, 134659500]]);
    const runs = readFileSync(path.join(s.dir, 'invocations.jsonl'), 'utf8');
    assert.doesNotMatch(runs, /--debounce-period/);
  });

  it('libgpiod 1 reports the same edges', async (t) => {
    const dir = tmpDir('rigcam-sync-fx-');
    const fixture = path.join(dir, 'train.txt');
    // Sub-µs digits: stored truncated to µs, as every other GPIO time.
    const onsets = [5_000_000_123_999n, 5_000_350_000_001n, 5_001_020_500_500n];
    writePulseFixture(fixture, 5, onsets);
    const s = setup({ inputs: [{ line: 5, mode: 'sync' }] }, { GPIOD_STANDIN_VERSION: '1', GPIOMON_FIXTURE: fixture, GPIOMON_SPEED: '2' });
    t.after(() => s.stop());
    await s.start();
    await until('6 edges', () => s.edges('in').length >= 6);
    assert.deepEqual(
      s.edges('in').map((e) => [e.active, e.mono_us]),
      onsets.flatMap((o) => [
        [1, Number(o / 1000n)],
        [0, Number((o + 10_000_000n) / 1000n)],
      ]),
    );
  });
});

describe('sync output (outputs.sync_out)', () => {
  it('emits the seeded train through gpioset; every edge stored with a bracket that holds the real set time', async (t) => {
    const dir = tmpDir('rigcam-sync-out-');
    const record = path.join(dir, 'gpioset.jsonl');
    // Long intervals: the gpioset stand-in is a Node process, and on a loaded machine it takes up to a second to start.
    const sync = { line: 21, pattern: 'random' as const, min_interval_ms: 1500, max_interval_ms: 2500, pulse_ms: 200, seed: 42 };
    const s = setup({ outputs: { sync_out: sync } }, { GPIOD_STANDIN_VERSION: '2', GPIOSET_RECORD: record });
    const pair = wallMonoPair();
    await s.start();
    await until('4 pulses out', () => s.edges('out').filter((e) => e.active === 0).length >= 4, 40_000);
    await s.stop();
    const edges = s.edges('out');
    assert.ok(edges.length >= 8);
    // Onset, end, onset, end ... numbered by pulse.
    edges.forEach((e, i) => {
      assert.equal(e.active, i % 2 === 0 ? 1 : 0, `edge ${i}`);
      assert.equal(e.seq, Math.floor(i / 2));
      assert.equal(e.clock, 'userspace-set');
      assert.equal(e.line, 21);
      assert.ok(e.uncertainty_us !== null && e.uncertainty_us > 0);
    });
    // The onsets follow the seeded intervals: the same seed regenerates them.
    const next = trainIntervals({ pattern: 'random', min_interval_ms: 1500, max_interval_ms: 2500, period_ms: 1000 }, 42);
    next(); // the first interval leads to the first onset
    const onsets = edges.filter((e) => e.active === 1);
    const ends = edges.filter((e) => e.active === 0);
    let fromSeed = 0;
    for (let i = 1; i < onsets.length; i++) {
      // Due one drawn interval after the previous onset as driven (or a pulse width after its end, when that was
      // later); then late by the timer and the tool's start, which the edge's bracket holds.
      const drawn = onsets[i - 1]!.mono_us + next() * 1000;
      const due = Math.max(drawn, ends[i - 1]!.mono_us + sync.pulse_ms * 1000);
      if (due === drawn) fromSeed++;
      const late = onsets[i]!.mono_us - due;
      assert.ok(late >= 0 && late <= 2 * onsets[i]!.uncertainty_us! + 100_000, `onset ${i}: ${late} µs after due (bracket ±${onsets[i]!.uncertainty_us})`);
    }
    assert.ok(fromSeed >= 1, 'at least one interval came from the seed');
    // What the stand-in says it drove, when (wall ms), against each stored bracket.
    const sets = readFileSync(record, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { event: string; line: number; value: number; t: number }).filter((r) => r.event === 'set');
    for (const e of edges) {
      const lo = monoToWallUs(e.mono_us - e.uncertainty_us!, pair) / 1000 - 2;
      const hi = monoToWallUs(e.mono_us + e.uncertainty_us!, pair) / 1000 + 2;
      const hit = sets.find((r) => r.value === e.active && r.t >= lo && r.t <= hi);
      assert.ok(hit, `edge seq ${e.seq} active ${e.active}: no gpioset set in [${lo}, ${hi}] ms`);
    }
    // The seed is stored with the run: the train can be regenerated from the database alone.
    assert.equal((JSON.parse(s.store.syncRun(edges[0]!.run_id)!.config) as { sync_out: { seed: number } }).sync_out.seed, 42);
    // Stopped: the line was left inactive, and released.
    const all = readFileSync(record, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { event: string; value: number });
    assert.deepEqual(all.at(-1), { ...all.at(-1), event: 'released', value: 0 });
  });
});

describe('config', () => {
  it('sync inputs default to no debounce, refuse a minimum pulse; sync_out validated', () => {
    const c = parseConfig({ gpio: { inputs: [{ line: 5, mode: 'sync' }, { line: 6, mode: 'marker' }] } });
    assert.equal(c.gpio.inputs[0]!.debounce_ms, 0);
    assert.equal(c.gpio.inputs[1]!.debounce_ms, 5);
    assert.throws(() => parseConfig({ gpio: { inputs: [{ line: 5, mode: 'sync', min_pulse_ms: 2 }] } }), /min_pulse_ms/);
    assert.throws(() => parseConfig({ gpio: { outputs: { sync_out: { line: 5, min_interval_ms: 900, max_interval_ms: 100 } } } }), /min_interval_ms/);
    assert.throws(() => parseConfig({ gpio: { outputs: { sync_out: { line: 5, pulse_ms: 80 } } } }), /pulse_ms/);
    assert.throws(() => parseConfig({ gpio: { inputs: [{ line: 5, mode: 'sync' }], outputs: { sync_out: { line: 5 } } } }), /line 5 is used by both/);
    assert.throws(() => parseConfig({ gpio: { outputs: { sync_out: { line: 5, rate: 3 } } } }), /rate/);
  });
});
