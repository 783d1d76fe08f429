import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { setSensorTriggerMode } from '../../src/sources/sensor-trigger.ts';
import { after, describe, it } from 'node:test';
import { recordingSummary } from '../../src/api/quality.ts';
import { parseConfig } from '../../src/config/load.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { SyncRecorder } from '../../src/sync/sync-recorder.ts';
import { createGpioTriggers } from '../../src/triggers/gpio/index.ts';
import { GpioExtension } from '../../src/triggers/gpio/gpio-extension.ts';
import { repoRoot } from '../helpers/cli.ts';
import { until, writePulseFixture } from '../helpers/sync-train.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { startTestBox, type TestBox } from '../runtime/runtime-helpers.ts';

// One pulse train on two wires: the camera's XTR (the rpicam-vid stand-in makes one frame per pulse, 5 ms + 14 µs
// after its onset, minus a dropped pulse, plus an extra frame) and GPIO line 17 (the gpiomon stand-in, kernel
// stamps). Both replay the same fixture from the same CLOCK_MONOTONIC origin.
const dir = tmpDir('rigcam-csi-trigger-');
const fixture = path.join(dir, 'pulses.txt');
const standinLog = path.join(dir, 'standin.log');
const PERIOD_NS = 50_000_000n; // 20 Hz, like the guide's PWM
const COUNT = 400;
const DROP = 120; // T0 + 6 s
const EXTRA = 150; // T0 + 7.5 s (+25 ms)
writePulseFixture(fixture, 17, Array.from({ length: COUNT }, (_, i) => 1_000_000_000_000n + BigInt(i) * PERIOD_NS), 5_000_000n);
const monoNowNs = (): bigint => process.hrtime.bigint();
const T0 = monoNowNs() + 6_000_000_000n;
const standinEnv = {
  GPIOD_STANDIN_BOARD: 'rpi4',
  GPIOD_STANDIN_STATE_DIR: dir,
  GPIOMON_FIXTURE: fixture,
  GPIOMON_RESTAMP: 'now',
  GPIOMON_RESTAMP_ORIGIN_NS: String(T0),
};
Object.assign(process.env, standinEnv, {
  PATH: `${path.join(repoRoot, 'test/standins')}${path.delimiter}${process.env.PATH ?? ''}`,
  RIGCAM_RPICAM_FIXTURE: path.join(repoRoot, 'hw-fixtures/rpicam/pi4-imx708-wide/list-cameras.txt'),
  RIGCAM_RPICAM_TRIGGER_FIXTURE: fixture,
  RIGCAM_RPICAM_TRIGGER_DROP: String(DROP),
  RIGCAM_RPICAM_TRIGGER_EXTRA: String(EXTRA),
  RIGCAM_STANDIN_LOG: standinLog,
});
delete process.env.LIBCAMERA_RPI_CONFIG_FILE;

const camera = { id: 'gs0', source: 'rpicam', device: 0, width: 320, height: 240, fps: 20, gop_seconds: 0.5, rpicam: { shutter_us: 5000 }, trigger: { mode: 'external', pulse_line: 17 } };

describe('hardware-triggered capture (GS camera XTR + the same pulses on a GPIO sync input)', () => {
  it('the config needs a fixed shutter and a sync input on pulse_line', () => {
    const gpio = { inputs: [{ line: 17, mode: 'sync' }] };
    assert.doesNotThrow(() => parseConfig({ gpio, cameras: [camera] }));
    assert.throws(() => parseConfig({ cameras: [camera] }), /trigger.pulse_line 17 must be a gpio input of mode sync/);
    assert.throws(() => parseConfig({ gpio, cameras: [{ ...camera, rpicam: {} }] }), /trigger external needs a fixed rpicam.shutter_us/);
    assert.throws(() => parseConfig({ gpio, cameras: [{ ...camera, source: 'test', rpicam: undefined }] }), /"trigger" \(external pulses\) is for CSI cameras/);
  });

  it('the driver parameter: set and read back; a box without the driver gets the reason', async () => {
    const sys = tmpDir('rigcam-sys-');
    await assert.rejects(setSensorTriggerMode('/sys/module/imx296/parameters/trigger_mode', 1, sys), /does not exist \(is the sensor's driver loaded/);
    const param = path.join(sys, 'sys/module/imx296/parameters/trigger_mode');
    mkdirSync(path.dirname(param), { recursive: true });
    writeFileSync(param, '0\n');
    await setSensorTriggerMode('/sys/module/imx296/parameters/trigger_mode', 1, sys);
    assert.equal(readFileSync(param, 'utf8'), '1\n');
  });

  let t: TestBox | null = null;
  after(async () => {
    await t?.close();
  });

  it('a dropped pulse and an extra frame are each flagged in the recording quality, time-matched', async () => {
    // /sys stands in a temp dir: the imx296 driver's parameter, free-running (0) until rigcam sets it.
    const sys = path.join(dir, 'sys');
    const param = path.join(sys, 'sys/module/imx296/parameters/trigger_mode');
    mkdirSync(path.dirname(param), { recursive: true });
    writeFileSync(param, '0\n');
    t = await startTestBox({ init: false, sysRoot: sys, extra: { cameras: [camera], gpio: { inputs: [{ line: 17, mode: 'sync' }] } } });
    const gpio = createGpioTriggers(t.config.gpio, { handler: t.box, env: { ...process.env, ...standinEnv }, backoff: { initialMs: 100 } });
    t.box.use(new SyncRecorder({ store: t.store, gpio, config: t.config.gpio, log: silentLogger(), context: () => t!.box.context() }));
    t.box.use(new GpioExtension(t.box.bus, gpio));
    await t.box.initialize();
    const cam = t.box.cameras.get('gs0')!;
    assert.equal(cam.state, 'ready', String(cam.lastError));
    assert.equal(readFileSync(param, 'utf8').trim(), '1', 'the sensor is in external trigger mode');

    const at = (s: number): bigint => T0 + BigInt(Math.round(s * 1e9));
    await until('T0 + 4 s', () => monoNowNs() >= at(4), 20_000);
    const start = await t.box.handleCommand('start_recording', {}, { source: 'api' });
    assert.equal(start.ok, true, start.error);
    await until('T0 + 9 s', () => monoNowNs() >= at(9), 20_000);
    const stop = await t.box.handleCommand('stop_recording', {}, { source: 'api' });
    assert.equal(stop.ok, true, stop.error);

    const [listed] = t.store.listRecordings();
    const rec = t.store.recording(listed!.id)!;
    assert.deepEqual(JSON.parse(rec.hw_trigger!), { mode: 'external', pulse_line: 17, camera_timeout_ms: 30_000, module_param: '/sys/module/imx296/parameters/trigger_mode' });
    // gpiomon started with the GPIO extension, after the camera was ready: its replay runs that much behind the
    // stamps it prints. The check reads what is stored, so wait for the pulses past the stop to be in.
    const pastStop = Number(at(9.5) / 1000n);
    await until('pulses past the stop stored', () => t!.store.syncPulsesOfTrial(rec.trial_id!, 17, 0, Number.MAX_SAFE_INTEGER).some((p) => p >= pastStop), 20_000);
    const q = (await recordingSummary(t.store, t.root, rec)) as { hw_trigger: Record<string, unknown> & { missing: Array<{ pulse_index: number; pulse_mono_us: number }>; extra: Array<{ capture_us: number; offset_us: number }> }; agreement: { checks: Array<{ name: string; ok: boolean | null; detail: string }> } };
    const h = q.hw_trigger;
    assert.ok(h, 'hardware trigger check present');
    const pulseUs = (k: number): number => Number((T0 + BigInt(k) * PERIOD_NS) / 1000n);
    assert.equal(h.missing_count, 1, JSON.stringify(h.missing));
    assert.equal(h.missing[0]!.pulse_mono_us, pulseUs(DROP), 'the dropped pulse, by its kernel time');
    assert.equal(h.extra_count, 1, JSON.stringify(h.extra));
    assert.ok(Math.abs(h.extra[0]!.capture_us - (pulseUs(EXTRA) + 5014 + 25_000)) < 2_000, 'the extra frame, half a period after its pulse');
    assert.ok(Math.abs((h.lag_us as number) - 5014) < 2_000, `lag ${h.lag_us}`);
    assert.equal(h.matched, (h.pulses as number) - 1);
    assert.equal(h.frames, (h.pulses as number));
    assert.ok((h.pulses as number) >= 80, `${h.pulses} pulses in the trial`);
    const check = q.agreement.checks.find((c) => c.name === 'hardware trigger: one frame per pulse')!;
    assert.equal(check.ok, false);
    assert.match(check.detail, /1 missing, 1 extra/);

    // The ~6 s before the first pulse did not time the camera out: rpicam-vid ran with the pipeline configuration
    // raising libcamera's frame timeout (the stand-in times out after 1 s without it, as libcamera does), written for
    // the Pi 4's pipeline (a wrong target and the stand-in, like libcamera, registers no camera).
    const log = readFileSync(standinLog, 'utf8');
    const configFile = path.resolve(t.config.data_dir, 'libcamera', 'rpi-pipeline-gs0.yaml');
    assert.ok(log.split('\n').includes(`rpicam-vid-env camera=0 LIBCAMERA_RPI_CONFIG_FILE=${configFile}`), log.split('\n').filter((l) => l.startsWith('rpicam-vid-env')).join('\n'));
    assert.doesNotMatch(log, /camera-timeout/, 'no libcamera frame timeout while waiting for the pulses');
    const written = parseYaml(readFileSync(configFile, 'utf8')) as { version: number; target: string; pipeline_handler: Record<string, unknown> };
    assert.deepEqual(written, { version: 1, target: 'bcm2835', pipeline_handler: { camera_timeout_value_ms: 30_000 } });

    // Stopped: the sensor is set back to free-running, so the next program to open it is not left waiting for pulses.
    await t.close();
    t = null;
    assert.equal(readFileSync(param, 'utf8').trim(), '0', 'trigger_mode set back to 0 when the camera stopped');
  });
});
