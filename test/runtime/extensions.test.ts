import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../../src/log/logger.ts';
import { createGpioTriggers } from '../../src/triggers/gpio/create-gpio-triggers.ts';
import { GpioExtension } from '../../src/triggers/gpio/gpio-extension.ts';
import { gpioConfigSchema } from '../../src/triggers/gpio/gpio-config.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { sleep, startTestBox, type TestBox } from './runtime-helpers.ts';

const STANDINS = fileURLToPath(new URL('../standins', import.meta.url));

/**
 * The GPIO extension on a real box: the `recording` output line follows the trial through the event bus, the
 * controller's state comes out as `gpio_status`, and the box's shutdown releases the line after the trial is
 * finalised. The lines are the libgpiod 2 stand-ins (test/standins), which log what they drive.
 */
describe('extensions: GPIO outputs follow the trial', () => {
  let t: TestBox;
  const state = tmpDir('rigcam-gpio-ext-');
  const record = path.join(state, 'gpioset.jsonl');
  const driven = (): Array<[string, number, number]> =>
    existsSync(record)
      ? readFileSync(record, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as { event: string; line: number; value: number })
          .map((d) => [d.event, d.line, d.value])
      : [];
  const until = async (what: string, ok: () => boolean, ms = 10_000): Promise<void> => {
    const end = Date.now() + ms;
    while (!ok()) {
      if (Date.now() > end) throw new Error(`timed out: ${what} (driven: ${JSON.stringify(driven())})`);
      await sleep(50);
    }
  };

  before(async () => {
    t = await startTestBox({ cameras: 1, init: false });
    const env = {
      ...process.env,
      PATH: `${STANDINS}:${process.env.PATH}`,
      GPIOD_STANDIN_VERSION: '2',
      GPIOD_STANDIN_BOARD: 'rpi4',
      GPIOD_STANDIN_STATE_DIR: state,
      GPIOSET_RECORD: record,
    };
    const gpio = createGpioTriggers(gpioConfigSchema.parse({ chip: 'gpiochip0', outputs: { recording: { line: 18 } } }), {
      handler: t.box,
      logger: silentLogger(),
      env,
      backoff: { initialMs: 100, maxMs: 400 },
      outputSettleMs: 800,
    });
    t.box.use(new GpioExtension(t.box.bus, gpio));
    await t.box.initialize();
  });
  after(async () => t.close());

  it('starts with the box and reports gpio_status', async () => {
    await t.waitStatus('gpio_status', (s) => s.data.state === 'ready', 10_000);
    await until('line 18 driven inactive at start', () => driven().some(([e, l, v]) => e === 'set' && l === 18 && v === 0));
  });

  it('drives the recording line active for the trial and inactive after it', async () => {
    const start = await t.box.handleCommand('start_recording', { session_prefix: 'gpio' }, { source: 'api' });
    assert.equal(start.ok, true, start.error);
    await until('line 18 active while recording', () => driven().some(([e, l, v]) => e === 'set' && l === 18 && v === 1));
    const stop = await t.box.handleCommand('stop_recording', {}, { source: 'api' });
    assert.equal(stop.ok, true, stop.error);
    await until('line 18 inactive after the trial', () => {
      const sets = driven().filter(([e, l]) => e === 'set' && l === 18);
      return sets.length >= 3 && sets.at(-1)![2] === 0;
    });
  });

  it('the box shutdown finalises the trial, then releases the line inactive', async () => {
    const start = await t.box.handleCommand('start_recording', { session_prefix: 'gpio' }, { source: 'api' });
    assert.equal(start.ok, true, start.error);
    await until('line 18 active again', () => driven().filter(([e, l, v]) => e === 'set' && l === 18 && v === 1).length === 2);
    await t.box.shutdown();
    const trial = t.db.prepare('SELECT state FROM trials WHERE id = ?').get(start.data!.trial_id) as { state: string };
    assert.equal(trial.state, 'complete', 'the trial was finalised by the shutdown');
    const last = driven().filter(([, l]) => l === 18).at(-1);
    assert.deepEqual(last, ['released', 18, 0], `line 18 released inactive: ${JSON.stringify(driven())}`);
  });
});
