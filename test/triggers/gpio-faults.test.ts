// Faults, debounce, minimum pulse width and output lines, through the real gpiod backend and
// the libgpiod stand-ins (test/standins) replaying hw-fixtures/gpio.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import type { CommandContext, CommandHandler, CommandResult } from '../../src/runtime/command-types.ts';
import {
  GpioTriggerController,
  GpiodEdgeSource,
  GpiodTools,
  GpiosetOutputLine,
  createGpioTriggers,
  gpioConfigSchema,
  type EdgeEvent,
  type GpioConfigInput,
  type GpioControllerStatus,
} from '../../src/triggers/gpio/index.ts';

const STANDINS = fileURLToPath(new URL('../standins', import.meta.url));
const BACKOFF = { initialMs: 100, maxMs: 400 };

interface Call {
  command: string;
  payload: unknown;
  ctx: CommandContext;
  at: number;
}

class RecordingHandler implements CommandHandler {
  readonly calls: Call[] = [];

  async handleCommand(command: string, payload: unknown, ctx: CommandContext): Promise<CommandResult> {
    this.calls.push({ command, payload, ctx, at: performance.now() });
    return { ok: true, command };
  }

  summary(): [string, unknown, number | undefined][] {
    return this.calls.map((c) => [c.command, c.payload, c.ctx.triggerMonoUs]);
  }
}

async function until<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 8000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

interface Rig {
  handler: RecordingHandler;
  controller: GpioTriggerController;
  edges: { edge: EdgeEvent; at: number }[];
  statuses: GpioControllerStatus[];
  logs: Record<string, unknown>[];
  invocations(): Promise<{ tool: string; kind: string; args: string[]; t: number; run?: number }[]>;
  driven(): Promise<{ event: string; line: number; value: number; chip: string }[]>;
}

/** A controller wired by hand, so the test can also watch the edge source. */
async function rig(
  t: { after: (fn: () => Promise<void>) => void },
  opts: { gen: 1 | 2; config: GpioConfigInput; fixture?: string; speed?: number; env?: Record<string, string>; path?: string },
): Promise<Rig> {
  const state = await mkdtemp(join(tmpdir(), 'rigcam-gpio-'));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: opts.path ?? `${STANDINS}:${process.env.PATH}`,
    GPIOD_STANDIN_VERSION: String(opts.gen),
    GPIOD_STANDIN_BOARD: 'rpi4',
    GPIOD_STANDIN_STATE_DIR: state,
    GPIOSET_RECORD: join(state, 'gpioset.jsonl'),
    GPIOMON_FIXTURE: opts.fixture ?? '',
    GPIOMON_SPEED: String(opts.speed ?? 1),
    ...opts.env,
  };
  const logs: Record<string, unknown>[] = [];
  const logger = pino(
    { level: 'debug' },
    new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    }),
  );
  const config = gpioConfigSchema.parse(opts.config);
  const tools = new GpiodTools(env);
  const lines = config.inputs.flatMap((i) => {
    const spec = { bias: i.bias };
    return i.stop_line === undefined ? [{ line: i.line, ...spec }] : [{ line: i.line, ...spec }, { line: i.stop_line, ...spec }];
  });
  const edgeSource = new GpiodEdgeSource(tools, config.chip, lines, logger, BACKOFF);
  const output = (o?: { line: number; active_low: boolean }) =>
    // The stand-in is a Node program: give a silent libgpiod 1 gpioset time to start.
    o && new GpiosetOutputLine(tools, { chip: config.chip, line: o.line, activeLow: o.active_low, backoff: BACKOFF, settleMs: 800 }, logger);
  const handler = new RecordingHandler();
  const controller = new GpioTriggerController({
    config,
    handler,
    edgeSource,
    recordingLine: output(config.outputs.recording),
    statusLedLine: output(config.outputs.status_led),
    logger,
  });
  const edges: Rig['edges'] = [];
  edgeSource.on('edge', (edge) => edges.push({ edge, at: performance.now() }));
  const statuses: GpioControllerStatus[] = [];
  controller.on('status', (s) => statuses.push(s));
  t.after(async () => {
    await controller.stop();
    await rm(state, { recursive: true, force: true });
  });
  const jsonl = async (file: string) =>
    existsSync(file)
      ? (await readFile(file, 'utf8'))
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l))
      : [];
  return {
    handler,
    controller,
    edges,
    statuses,
    logs,
    invocations: () => jsonl(join(state, 'invocations.jsonl')),
    driven: () => jsonl(join(state, 'gpioset.jsonl')),
  };
}

const faultOf = (r: Rig, fault: string) => r.statuses.find((s) => s.sources.some((x) => x.fault === fault));

test('gpiomon missing from PATH: a tool_missing status and retries, no crash', async (t) => {
  const empty = await mkdtemp(join(tmpdir(), 'rigcam-nopath-'));
  t.after(() => rm(empty, { recursive: true, force: true }));
  const r = await rig(t, { gen: 2, config: { inputs: [{ line: 17 }] }, path: empty });
  r.controller.start();
  const status = await until('tool_missing', () => faultOf(r, 'tool_missing'));
  assert.equal(status.state, 'error');
  const source = status.sources.find((s) => s.fault === 'tool_missing')!;
  assert.match(source.message ?? '', /gpiomon not found on PATH/);
  assert.equal(source.state, 'restarting');
  // It keeps trying with back-off (100 ms, then 200 ms).
  await until('a second attempt', () => r.statuses.filter((s) => s.sources.some((x) => x.fault === 'tool_missing')).length >= 2);
  assert.equal(r.controller.status.state, 'error');
});

for (const [gen, stderr] of [
  [1, 'gpiomon: error waiting for events: No such file or directory'],
  [2, "gpiomon: cannot find GPIO chip character device 'gpiochip7'"],
] as const) {
  test(`libgpiod ${gen}: a gpiochip that does not exist is reported with gpiomon's own words and retried`, async (t) => {
    const r = await rig(t, { gen, config: { chip: 'gpiochip7', inputs: [{ line: 17 }] } });
    r.controller.start();
    const status = await until('chip_missing', () => faultOf(r, 'chip_missing'));
    const source = status.sources.find((s) => s.fault === 'chip_missing')!;
    assert.equal(source.message, `gpiomon exited with status 1: ${stderr}`);
    assert.ok(r.logs.some((l) => l.stderr === stderr && l.msg === 'gpiomon stderr'), 'stderr kept in the log');
    const errors = await until('a retry', () => {
      const n = r.logs.filter((l) => l.stderr === stderr).length;
      return n >= 2 && n;
    });
    assert.ok(errors >= 2);
  });
}

test('libgpiod 2: an input line the chip lacks fails, the recording output still works', async (t) => {
  const r = await rig(t, { gen: 2, config: { inputs: [{ line: 60 }], outputs: { recording: { line: 18 } } } });
  r.controller.start();
  const status = await until('line_invalid', () => faultOf(r, 'line_invalid'));
  assert.match(status.sources.find((s) => s.fault === 'line_invalid')!.message ?? '', /offset 60 is out of range on chip 'gpiochip0'/);
  await r.controller.setRecording(true);
  const sets = (await r.driven()).filter((d) => d.event === 'set' && d.line === 18);
  assert.deepEqual(
    sets.map((d) => d.value),
    [0, 1],
  );
  // Between retries a stand-in gpiomon (a Node program) that is slow to die can pass for running for a moment:
  // the failing input must still bring the controller back to error.
  await until('the controller in error', () => r.controller.status.state === 'error');
});

test('gpiomon dying is restarted with back-off, its stderr logged, and edges keep coming', async (t) => {
  // Run 0 replays the BeagleY-AI capture then dies as if the chip went away; run 1 replays a
  // later part of the same capture and stays up.
  const r = await rig(t, {
    gen: 2,
    config: { inputs: [{ line: 15, mode: 'marker', debounce_ms: 0 }] },
    fixture: 'v2/gpiomon-beagley-ai-two-lines-15-17.txt,v2/gpiomon-beagley-ai-line17-duplicate-rising.txt',
    speed: 10,
    env: { GPIOMON_EXIT_AFTER_REPLAY: 'error:1' },
  });
  r.controller.start();
  await until('6 marks', () => r.handler.calls.length >= 6);
  assert.deepEqual(
    r.handler.calls.map((c) => c.ctx.triggerMonoUs),
    [1124906398, 1124951803, 1125004602, 1125821519, 1127092015, 1127833003],
  );
  const died = faultOf(r, 'device_gone')!.sources.find((s) => s.fault === 'device_gone')!;
  assert.equal(died.state, 'restarting');
  // The first back-off step (100 ms), less at most the default 20 % jitter, rounded: 80 is one draw in 40.
  assert.ok(died.retryInMs! >= 80 && died.retryInMs! <= 100, `retry in ${died.retryInMs} ms`);
  assert.equal(died.message, 'gpiomon exited with status 1: gpiomon: error reading line events: No such device');
  assert.ok(r.logs.some((l) => l.stderr === 'gpiomon: error reading line events: No such device'));
  const runs = (await r.invocations()).filter((i) => i.kind === 'monitor');
  assert.equal(runs.length, 2);
  const deathAt = (await r.invocations()).find((i) => i.kind === 'error')!.t;
  assert.ok(runs[1]!.t - deathAt >= died.retryInMs!, `restarted ${runs[1]!.t - deathAt} ms after the death`);
  await until('running again', () => r.controller.status.state === 'ready');
});

// v2/gpiomon-rk3328-line16-bounce.txt: a switch that bounces eight times within 1.9 ms and
// comes back to where it was, then one clean edge 1.2 s later. Active low, like a button.
const BOUNCE = 'v2/gpiomon-rk3328-line16-bounce.txt';

test('libgpiod 1: software debounce turns a bounce burst back to rest into nothing', async (t) => {
  // The v1 stand-in prints this libgpiod 2 recording in v1's format (see hw-fixtures/gpio/SOURCE.md).
  const r = await rig(t, { gen: 1, config: { inputs: [{ line: 16, mode: 'marker', active_low: true, debounce_ms: 5 }] }, fixture: BOUNCE, speed: 5 });
  r.controller.start();
  await until('the marker', () => r.handler.calls.length >= 1);
  await until('all edges seen', () => r.edges.length >= 9);
  await new Promise((res) => setTimeout(res, 100));
  assert.deepEqual(r.handler.summary(), [['mark', { label: 'gpio16' }, 134659500]]);
  const monitor = (await r.invocations()).find((i) => i.kind === 'monitor')!;
  assert.deepEqual(monitor.args, ['--line-buffered', '--format=%o %e %s %n', '--bias=pull-up', 'gpiochip0', '16']);
});

test('libgpiod 1 without debounce: every bounce that becomes active is a marker', async (t) => {
  const r = await rig(t, { gen: 1, config: { inputs: [{ line: 16, mode: 'marker', active_low: true, debounce_ms: 0 }] }, fixture: BOUNCE, speed: 5 });
  r.controller.start();
  await until('three markers', () => r.handler.calls.length >= 3);
  await new Promise((res) => setTimeout(res, 100));
  assert.deepEqual(
    r.handler.calls.map((c) => c.ctx.triggerMonoUs),
    [133441027, 133442866, 134659500],
  );
});

test('libgpiod 2: raw edges from the kernel (never its debounce, which stamps late), debounced by rigcam', async (t) => {
  const r = await rig(t, { gen: 2, config: { inputs: [{ line: 16, mode: 'marker', active_low: true, debounce_ms: 5 }] }, fixture: BOUNCE, speed: 5 });
  r.controller.start();
  await until('the marker', () => r.handler.calls.length >= 1);
  await until('all edges seen', () => r.edges.length >= 9);
  await new Promise((res) => setTimeout(res, 100));
  // The two bounce bursts end where they began (nothing); the clean falling edge keeps its interrupt time.
  assert.deepEqual(r.handler.summary(), [['mark', { label: 'gpio16' }, 134659500]]);
  assert.equal(r.edges.length, 9, 'every raw edge comes through');
  const monitor = (await r.invocations()).find((i) => i.kind === 'monitor')!;
  assert.deepEqual(monitor.args, [
    '--chip', 'gpiochip0', '--consumer', 'rigcam', '--edges', 'both', '--event-clock', 'monotonic',
    '--format', '%o %e %S', '--bias', 'pull-up', '16',
  ]);
});

// v1/gpiomon-pisound-micro-line6-pull-up.txt: one press of 14.58 ms on a pulled-up button.
const SHORT_PRESS = 'v1/gpiomon-pisound-micro-line6-pull-up.txt';

test('minimum pulse width: a press shorter than min_pulse_ms is ignored entirely', async (t) => {
  const r = await rig(t, { gen: 1, config: { inputs: [{ line: 6, mode: 'level', active_low: true, min_pulse_ms: 20 }] }, fixture: SHORT_PRESS });
  r.controller.start();
  await until('both edges', () => r.edges.length >= 2);
  await new Promise((res) => setTimeout(res, 200));
  assert.deepEqual(r.handler.calls, []);
});

test('minimum pulse width: a longer press records with its own edge times', async (t) => {
  const r = await rig(t, { gen: 2, config: { inputs: [{ line: 6, mode: 'level', active_low: true, min_pulse_ms: 10 }] }, fixture: SHORT_PRESS });
  r.controller.start();
  await until('start and stop', () => r.handler.calls.length >= 2);
  assert.deepEqual(r.handler.summary(), [
    ['start_recording', {}, 15275783939],
    ['stop_recording', {}, 15275798515],
  ]);
});

test('level mode waits min_pulse_ms before starting, then uses the original edge time', async (t) => {
  // v1/gpiomon-rpi-line20-button-to-ground.txt at real speed: the first press lasts 212.8 ms.
  const r = await rig(t, {
    gen: 1,
    config: { inputs: [{ line: 20, mode: 'level', active_low: true, min_pulse_ms: 100, debounce_ms: 0 }] },
    fixture: 'v1/gpiomon-rpi-line20-button-to-ground.txt',
  });
  r.controller.start();
  await until('start and stop', () => r.handler.calls.length >= 2);
  const press = r.edges[0]!;
  const release = r.edges[1]!;
  const start = r.handler.calls[0]!;
  assert.deepEqual(r.handler.summary().slice(0, 2), [
    ['start_recording', {}, 263978994698],
    ['stop_recording', {}, 263979207460],
  ]);
  assert.ok(start.at - press.at >= 100, `started ${start.at - press.at} ms after the press`);
  assert.ok(start.at < release.at, 'started while the button was still held');
});

for (const gen of [1, 2] as const) {
  test(`libgpiod ${gen}: the recording line follows setRecording`, async (t) => {
    const r = await rig(t, { gen, config: { outputs: { recording: { line: 18 } } } });
    r.controller.start();
    await r.controller.setRecording(true);
    await r.controller.setRecording(true); // already there: no new gpioset
    await r.controller.setRecording(false);
    assert.deepEqual(
      (await r.driven()).map((d) => [d.event, d.chip, d.line, d.value]),
      [
        ['set', 'gpiochip0', 18, 0],
        ['released', 'gpiochip0', 18, 0],
        ['set', 'gpiochip0', 18, 1],
        ['released', 'gpiochip0', 18, 1],
        ['set', 'gpiochip0', 18, 0],
      ],
    );
    const sets = (await r.invocations()).filter((i) => i.tool === 'gpioset' && i.kind === 'set').map((i) => i.args);
    assert.deepEqual(
      sets[1],
      gen === 1 ? ['--mode=signal', 'gpiochip0', '18=1'] : ['--banner', '--chip', 'gpiochip0', '--consumer', 'rigcam', '18=1'],
    );
    await r.controller.stop();
    assert.deepEqual((await r.driven()).at(-1), { ...(await r.driven()).at(-1), event: 'released', line: 18, value: 0 });
  });
}

test('an active-low recording line is driven low while recording', async (t) => {
  const r = await rig(t, { gen: 2, config: { outputs: { recording: { line: 18, active_low: true } } } });
  r.controller.start();
  await r.controller.setRecording(true);
  assert.deepEqual(
    (await r.driven()).filter((d) => d.event === 'set').map((d) => d.value),
    [1, 0],
  );
});

test('status LED: steady when the inputs run, blinking while one fails', async (t) => {
  const ok = await rig(t, { gen: 2, config: { inputs: [{ line: 17 }], outputs: { status_led: { line: 23 } } } });
  ok.controller.start();
  await until('ready', () => ok.controller.status.state === 'ready');
  await until('LED on', async () => (await ok.driven()).some((d) => d.event === 'set' && d.value === 1));
  await new Promise((res) => setTimeout(res, 700));
  assert.deepEqual(
    (await ok.driven()).filter((d) => d.event === 'set').map((d) => d.value),
    [0, 1],
  );

  const bad = await rig(t, { gen: 2, config: { inputs: [{ line: 60 }], outputs: { status_led: { line: 23 } } } });
  bad.controller.start();
  const blinks = await until('blinking', async () => {
    const values = (await bad.driven()).filter((d) => d.event === 'set').map((d) => d.value);
    return values.length >= 5 && values;
  });
  // off at start, then on/off alternating
  assert.deepEqual(blinks.slice(1, 5), [1, 0, 1, 0]);
});

test('createGpioTriggers builds the same thing from the config (gpiod backend)', async (t) => {
  const state = await mkdtemp(join(tmpdir(), 'rigcam-gpio-'));
  const handler = new RecordingHandler();
  const controller = createGpioTriggers(gpioConfigSchema.parse({ chip: 'auto', inputs: [{ line: 4, mode: 'toggle' }] }), {
    handler,
    env: {
      ...process.env,
      PATH: `${STANDINS}:${process.env.PATH}`,
      GPIOD_STANDIN_VERSION: '1',
      GPIOD_STANDIN_BOARD: 'rpi5-early-kernel',
      GPIOD_STANDIN_STATE_DIR: state,
      GPIOMON_FIXTURE: 'v1/gpiomon-rpi-line4-switch.txt',
      GPIOMON_SPEED: '50',
    },
  });
  t.after(async () => {
    await controller.stop();
    await rm(state, { recursive: true, force: true });
  });
  controller.start();
  await until('two toggles', () => handler.calls.length >= 2);
  // chip 'auto' found pinctrl-rp1 on gpiochip4 through gpiodetect
  const monitor = (await readFile(join(state, 'invocations.jsonl'), 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((i) => i.kind === 'monitor');
  assert.deepEqual(monitor.args.slice(-2), ['gpiochip4', '4']);
  assert.deepEqual(handler.summary().slice(0, 2), [
    ['start_recording', {}, 6069635294],
    ['stop_recording', {}, 6074515545],
  ]);
});
