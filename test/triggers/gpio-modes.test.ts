// Every input mode, with both libgpiod generations: the real GpioTriggerController on the real
// gpiod backend, which spawns the gpiomon stand-in (test/standins) replaying recorded gpiomon
// output (hw-fixtures/gpio). The expected triggerMonoUs are the recordings' kernel timestamps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CommandContext, CommandHandler, CommandResult } from '../../src/runtime/command-types.ts';
import { createGpioTriggers, gpioConfigSchema, type GpioConfigInput } from '../../src/triggers/gpio/index.ts';

const STANDINS = fileURLToPath(new URL('../standins', import.meta.url));

interface Call {
  command: string;
  payload: unknown;
  ctx: CommandContext;
}

/** Records what the controller asks; answers ok like a runtime that accepts everything. */
class RecordingHandler implements CommandHandler {
  readonly calls: Call[] = [];
  private wake?: () => void;

  async handleCommand(command: string, payload: unknown, ctx: CommandContext): Promise<CommandResult> {
    this.calls.push({ command, payload, ctx });
    this.wake?.();
    return { ok: true, command };
  }

  async waitFor(count: number, timeoutMs = 8000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.calls.length < count) {
      if (Date.now() > deadline) throw new Error(`got ${this.calls.length} commands, wanted ${count}: ${JSON.stringify(this.calls)}`);
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, 50);
      });
    }
  }

  summary(): [string, unknown, number | undefined][] {
    return this.calls.map((c) => [c.command, c.payload, c.ctx.triggerMonoUs]);
  }
}

async function runMode(
  t: { after: (fn: () => Promise<void>) => void },
  gen: 1 | 2,
  config: GpioConfigInput,
  fixture: string,
  speed: number,
  expected: [string, unknown, number][],
): Promise<RecordingHandler> {
  const state = await mkdtemp(join(tmpdir(), 'rigcam-gpio-'));
  const env = {
    ...process.env,
    PATH: `${STANDINS}:${process.env.PATH}`,
    GPIOD_STANDIN_VERSION: String(gen),
    GPIOD_STANDIN_BOARD: 'rpi4',
    GPIOD_STANDIN_STATE_DIR: state,
    GPIOMON_FIXTURE: fixture,
    GPIOMON_SPEED: String(speed),
  };
  const handler = new RecordingHandler();
  const controller = createGpioTriggers(gpioConfigSchema.parse(config), { handler, env, backoff: { initialMs: 100 } });
  t.after(async () => {
    await controller.stop();
    await rm(state, { recursive: true, force: true });
  });
  controller.start();
  await handler.waitFor(expected.length);
  // Nothing more may follow (e.g. a bounce counted twice): give stragglers a moment.
  await new Promise((r) => setTimeout(r, 150));
  assert.deepEqual(handler.summary(), expected);
  for (const call of handler.calls) assert.equal(call.ctx.source, 'gpio');
  return handler;
}

// hw-fixtures/gpio/v1/gpiomon-rpi-line4-switch.txt: a switch on GPIO4 of a Raspberry Pi.
const SWITCH = 'v1/gpiomon-rpi-line4-switch.txt';
// hw-fixtures/gpio/v2/gpiomon-beagley-ai-two-lines-15-17.txt: two lines, first edges falling.
const TWO_LINES = 'v2/gpiomon-beagley-ai-two-lines-15-17.txt';

test('level, libgpiod 1: recording follows the line, stamped with each edge', async (t) => {
  await runMode(t, 1, { inputs: [{ line: 4, mode: 'level' }] }, SWITCH, 50, [
    ['start_recording', {}, 6069635294],
    ['stop_recording', {}, 6073162199],
    ['start_recording', {}, 6074515545],
    ['stop_recording', {}, 6075472309],
    ['start_recording', {}, 6076245828],
    ['stop_recording', {}, 6076953254],
    ['start_recording', {}, 6078277888],
  ]);
});

test('level, libgpiod 1, active low: a button to ground records while pressed', async (t) => {
  await runMode(t, 1, { inputs: [{ line: 20, mode: 'level', active_low: true }] }, 'v1/gpiomon-rpi-line20-button-to-ground.txt', 10, [
    ['start_recording', {}, 263978994698],
    ['stop_recording', {}, 263979207460],
    ['start_recording', {}, 263979704718],
    ['stop_recording', {}, 263979950956],
    ['start_recording', {}, 263980404080],
    ['stop_recording', {}, 263980694575],
  ]);
});

test('level, libgpiod 2 (kernel debounce): recording follows GPIO15', async (t) => {
  // The leading falling edge finds the line already inactive and changes nothing.
  await runMode(t, 2, { inputs: [{ line: 15, mode: 'level' }] }, TWO_LINES, 10, [
    ['start_recording', {}, 1124906398],
    ['stop_recording', {}, 1124940765],
    ['start_recording', {}, 1124951803],
    ['stop_recording', {}, 1124986272],
    ['start_recording', {}, 1125004602],
    ['stop_recording', {}, 1125814590],
    ['start_recording', {}, 1125821519],
  ]);
});

test('toggle, libgpiod 1: each rising edge flips recording', async (t) => {
  await runMode(t, 1, { inputs: [{ line: 4, mode: 'toggle' }] }, SWITCH, 50, [
    ['start_recording', {}, 6069635294],
    ['stop_recording', {}, 6074515545],
    ['start_recording', {}, 6076245828],
    ['stop_recording', {}, 6078277888],
  ]);
});

test('toggle, libgpiod 2', async (t) => {
  await runMode(t, 2, { inputs: [{ line: 15, mode: 'toggle' }] }, TWO_LINES, 10, [
    ['start_recording', {}, 1124906398],
    ['stop_recording', {}, 1124951803],
    ['start_recording', {}, 1125004602],
    ['stop_recording', {}, 1125821519],
  ]);
});

const START_STOP_EXPECTED: [string, unknown, number][] = [
  ['start_recording', {}, 1124906398],
  ['stop_recording', {}, 1124908588],
  ['start_recording', {}, 1124951803],
  ['stop_recording', {}, 1124953495],
  ['start_recording', {}, 1125004602],
  ['stop_recording', {}, 1125006201],
  ['start_recording', {}, 1125821519],
  ['stop_recording', {}, 1125822271],
];

test('start_stop, libgpiod 1: GPIO15 starts, GPIO17 stops', async (t) => {
  // A libgpiod 2 recording printed by the v1 stand-in in v1's format (see hw-fixtures/gpio/SOURCE.md).
  // Its lines are clean logic signals 2 to 4 ms apart: no debounce.
  await runMode(t, 1, { inputs: [{ line: 15, mode: 'start_stop', stop_line: 17, debounce_ms: 0 }] }, TWO_LINES, 10, START_STOP_EXPECTED);
});

test('start_stop, libgpiod 2', async (t) => {
  await runMode(t, 2, { inputs: [{ line: 15, mode: 'start_stop', stop_line: 17, debounce_ms: 0 }] }, TWO_LINES, 10, START_STOP_EXPECTED);
});

test('marker, libgpiod 1: each active edge marks with the label', async (t) => {
  await runMode(t, 1, { inputs: [{ line: 4, mode: 'marker', label: 'reward' }] }, SWITCH, 50, [
    ['mark', { label: 'reward' }, 6069635294],
    ['mark', { label: 'reward' }, 6074515545],
    ['mark', { label: 'reward' }, 6076245828],
    ['mark', { label: 'reward' }, 6078277888],
  ]);
});

test('marker, libgpiod 2, active low, default label', async (t) => {
  await runMode(t, 2, { inputs: [{ line: 15, mode: 'marker', active_low: true }] }, TWO_LINES, 10, [
    ['mark', { label: 'gpio15' }, 1124883605],
    ['mark', { label: 'gpio15' }, 1124940765],
    ['mark', { label: 'gpio15' }, 1124986272],
    ['mark', { label: 'gpio15' }, 1125814590],
  ]);
});

test('toggle follows recording started elsewhere (setRecording)', async (t) => {
  const state = await mkdtemp(join(tmpdir(), 'rigcam-gpio-'));
  const env = {
    ...process.env,
    PATH: `${STANDINS}:${process.env.PATH}`,
    GPIOD_STANDIN_VERSION: '2',
    GPIOD_STANDIN_STATE_DIR: state,
    GPIOMON_FIXTURE: TWO_LINES,
    GPIOMON_SPEED: '10',
  };
  const handler = new RecordingHandler();
  const controller = createGpioTriggers(gpioConfigSchema.parse({ inputs: [{ line: 15, mode: 'toggle' }] }), { handler, env });
  t.after(async () => {
    await controller.stop();
    await rm(state, { recursive: true, force: true });
  });
  // Someone started recording over HTTP before the first edge: the first press stops it.
  await controller.setRecording(true);
  controller.start();
  await handler.waitFor(4);
  assert.deepEqual(
    handler.calls.map((c) => c.command),
    ['stop_recording', 'start_recording', 'stop_recording', 'start_recording'],
  );
});
