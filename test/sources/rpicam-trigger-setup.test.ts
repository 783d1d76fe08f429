import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { basePipelineConfigFile, pipelineConfigText, rpiTargetOf, writeTriggerPipelineConfig } from '../../src/sources/rpi-pipeline-config.ts';
import { sensorTriggerParam } from '../../src/sources/sensor-trigger.ts';
import { makeSourceSpec } from '../../src/sources/make-spec.ts';
import { cameraSchema } from '../../src/config/schema.ts';
import { repoRoot } from '../helpers/cli.ts';
import { until, writePulseFixture } from '../helpers/sync-train.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { startTestBox, type TestBox } from '../runtime/runtime-helpers.ts';

// The set-up around a triggered CSI camera's runs: libcamera's pipeline configuration raising the frame timeout
// (LIBCAMERA_RPI_CONFIG_FILE), the rpicam-vid stand-in's model of it, and the sensor's trigger_mode set back to 0.

const dir = tmpDir('rigcam-trigger-setup-');
const standins = path.join(repoRoot, 'test/standins');

// Two GS cameras on a Pi 5, as libcamera registers them (the paths of raspberrypi/picamera2 issue 748's log); the
// listing's layout is rpicam-hello's (hw-fixtures/rpicam). Constructed: no recorded listing of an imx296 exists here.
const PI5_TWO_GS = `Available cameras
-----------------
0 : imx296 [1456x1088 10-bit RGGB] (/base/axi/pcie@120000/rp1/i2c@88000/imx296@1a)
    Modes: 'SRGGB10_CSI2P' : 1456x1088 [60.38 fps - (0, 0)/1456x1088 crop]

1 : imx296 [1456x1088 10-bit RGGB] (/base/axi/pcie@120000/rp1/i2c@80000/imx296@1a)
    Modes: 'SRGGB10_CSI2P' : 1456x1088 [60.38 fps - (0, 0)/1456x1088 crop]
`;
const listing = path.join(dir, 'list-cameras.txt');
writeFileSync(listing, PI5_TWO_GS);

// rpi_apps.yaml's layout (JSON with # comments and a trailing comma, as libcamera ships it for vc4).
const RPI_APPS = `{
        "version": 1.0,
        "target": "bcm2835",

        "pipeline_handler":
        {
                # internal buffers
                "min_unicam_buffers": 2,
                "min_total_unicam_buffers": 4,
                # "camera_timeout_value_ms": 0,
                "raw_mandatory_stream": true,
                "output0_mandatory_stream": true,
        }
}
`;

describe("libcamera's pipeline configuration for a triggered camera", () => {
  it("a triggered camera's run: the file in its environment, a stall limit 5 s beyond the timeout, none before the first pulse", () => {
    const cam = cameraSchema.parse({ id: 'gs0', source: 'rpicam', device: 0, width: 320, height: 240, fps: 60, rpicam: { shutter_us: 5000 }, trigger: { mode: 'external', pulse_line: 17, camera_timeout_ms: 120_000 } });
    const spec = makeSourceSpec(cam, 'libx264', { pipelineConfigFile: '/data/libcamera/rpi-pipeline-gs0.yaml' });
    assert.equal(spec.env?.LIBCAMERA_RPI_CONFIG_FILE, '/data/libcamera/rpi-pipeline-gs0.yaml');
    assert.equal(spec.env?.PATH, process.env.PATH, "the rest of rigcam's environment is passed on");
    assert.equal(spec.stallMs, 125_000);
    assert.equal(spec.firstOutputMs, null);
    assert.equal(cameraSchema.parse({ ...cam, trigger: { mode: 'external', pulse_line: 17 } }).trigger?.camera_timeout_ms, 30_000, 'default');
    assert.equal(cameraSchema.safeParse({ ...cam, trigger: { mode: 'external', pulse_line: 17, camera_timeout_ms: 999 } }).success, false);
    // Free-running: rigcam's own environment (a user's LIBCAMERA_RPI_CONFIG_FILE included), the frame-rate stall limit.
    const free = makeSourceSpec({ ...cam, trigger: undefined, rpicam: undefined }, 'libx264', {});
    assert.equal(free.env, undefined);
    assert.equal(free.stallMs, undefined);
  });

  it('the pipeline from the path libcamera registers the camera by', () => {
    assert.equal(rpiTargetOf('/base/axi/pcie@120000/rp1/i2c@88000/imx296@1a'), 'pisp');
    assert.equal(rpiTargetOf('/base/axi/pcie@1000120000/rp1/i2c@80000/imx296@1a'), 'pisp');
    assert.equal(rpiTargetOf('/base/soc/i2c0mux/i2c@1/imx296@1a'), 'bcm2835');
    assert.equal(sensorTriggerParam('imx296'), '/sys/module/imx296/parameters/trigger_mode');
    assert.equal(sensorTriggerParam('../x'), null, 'a sensor name never makes a path outside /sys/module');
  });

  it("keeps every key of what rpicam-vid would have read, and sets target, version and the timeout", () => {
    const text = pipelineConfigText(RPI_APPS, '/usr/share/libcamera/pipeline/rpi/vc4/rpi_apps.yaml', 'bcm2835', 45_000);
    assert.match(text, /"version": 1\.0,/);
    assert.deepEqual(parseYaml(text), {
      version: 1,
      target: 'bcm2835',
      pipeline_handler: { min_unicam_buffers: 2, min_total_unicam_buffers: 4, raw_mandatory_stream: true, output0_mandatory_stream: true, camera_timeout_value_ms: 45_000 },
    });
    // A user's file for the other pipeline: the camera's pipeline wins (libcamera refuses a wrong target outright).
    const user = pipelineConfigText('{"version": 1.0, "target": "bcm2835", "pipeline_handler": {"camera_timeout_value_ms": 500, "disable_tdn": true}}', 'user.yaml', 'pisp', 30_000);
    assert.deepEqual(parseYaml(user), { version: 1, target: 'pisp', pipeline_handler: { camera_timeout_value_ms: 30_000, disable_tdn: true } });
    assert.deepEqual(parseYaml(pipelineConfigText(null, null, 'pisp', 30_000)), { version: 1, target: 'pisp', pipeline_handler: { camera_timeout_value_ms: 30_000 } });
    assert.throws(() => pipelineConfigText('{ "version": 1.0, "target": ', 'broken.yaml', 'pisp', 30_000), /broken\.yaml: not YAML/);
    assert.throws(() => pipelineConfigText('{ "version": "one", "pipeline_handler": [1] }', 'odd.yaml', 'pisp', 30_000), /odd\.yaml: version: .*pipeline_handler/);
  });

  it("starts from the file rpicam-apps would choose: the user's LIBCAMERA_RPI_CONFIG_FILE, else rpi_apps.yaml on vc4 only", () => {
    const fsRoot = tmpDir('rigcam-fsroot-');
    assert.equal(basePipelineConfigFile('bcm2835', undefined, fsRoot), null);
    const shared = path.join(fsRoot, 'usr/share/libcamera/pipeline/rpi/vc4/rpi_apps.yaml');
    mkdirSync(path.dirname(shared), { recursive: true });
    writeFileSync(shared, RPI_APPS);
    assert.equal(basePipelineConfigFile('bcm2835', undefined, fsRoot), shared);
    assert.equal(basePipelineConfigFile('pisp', undefined, fsRoot), null, 'rpicam-apps points the Pi 5 at no file');
    const local = path.join(fsRoot, 'usr/local/share/libcamera/pipeline/rpi/vc4/rpi_apps.yaml');
    mkdirSync(path.dirname(local), { recursive: true });
    writeFileSync(local, RPI_APPS);
    assert.equal(basePipelineConfigFile('bcm2835', undefined, fsRoot), local, '/usr/local first, as rpicam-apps searches');
    assert.equal(basePipelineConfigFile('bcm2835', '/etc/my.yaml', fsRoot), '/etc/my.yaml');

    const dataDir = tmpDir('rigcam-data-');
    const w = writeTriggerPipelineConfig({ dataDir, cameraId: 'gs0', target: 'bcm2835', timeoutMs: 30_000, inherited: undefined, fsRoot });
    assert.equal(w.file, path.join(dataDir, 'libcamera', 'rpi-pipeline-gs0.yaml'));
    assert.equal(w.base, local);
    assert.equal((parseYaml(readFileSync(w.file, 'utf8')) as { pipeline_handler: Record<string, unknown> }).pipeline_handler.min_unicam_buffers, 2);
    // Replaced, not appended; no temporary file left beside it.
    writeTriggerPipelineConfig({ dataDir, cameraId: 'gs0', target: 'pisp', timeoutMs: 60_000, inherited: undefined, fsRoot });
    assert.deepEqual(parseYaml(readFileSync(w.file, 'utf8')), { version: 1, target: 'pisp', pipeline_handler: { camera_timeout_value_ms: 60_000 } });
    assert.deepEqual(readdirSync(path.dirname(w.file)), ['rpi-pipeline-gs0.yaml']);
    // The user's file cannot be read: refused with the reason (their settings are not silently dropped), nothing written.
    assert.throws(
      () => writeTriggerPipelineConfig({ dataDir, cameraId: 'gs1', target: 'pisp', timeoutMs: 30_000, inherited: path.join(fsRoot, 'missing.yaml'), fsRoot }),
      /missing\.yaml \(LIBCAMERA_RPI_CONFIG_FILE\) cannot be read: ENOENT/,
    );
    assert.equal(existsSync(path.join(dataDir, 'libcamera', 'rpi-pipeline-gs1.yaml')), false);
  });
});

/** One run of the rpicam-vid stand-in on a triggered camera whose first pulse is `leadMs` away; its stderr and log. */
async function standinRun(env: Record<string, string>, leadMs: number, runMs: number): Promise<{ code: number | null; stderr: string; log: string }> {
  const d = tmpDir('rigcam-standin-run-');
  const pulses = path.join(d, 'pulses.txt');
  writePulseFixture(pulses, 6, Array.from({ length: 100 }, (_, i) => 1_000_000_000_000n + BigInt(i) * 50_000_000n), 5_000_000n);
  const log = path.join(d, 'log');
  const child = spawn(
    path.join(standins, 'rpicam-vid'),
    ['--camera', '0', '--width', '320', '--height', '240', '--framerate', '20', '--codec', 'libav', '--libav-format', 'mpegts', '--libav-video-codec', 'libx264', '--low-latency', '--shutter', '5000', '--timeout', '0', '--nopreview', '--verbose=2', '--output', '-'],
    {
      env: {
        ...process.env,
        PATH: `${standins}${path.delimiter}${process.env.PATH ?? ''}`,
        RIGCAM_RPICAM_FIXTURE: listing,
        RIGCAM_RPICAM_TRIGGER_FIXTURE: pulses,
        GPIOMON_RESTAMP_ORIGIN_NS: String(process.hrtime.bigint() + BigInt(leadMs) * 1_000_000n),
        RIGCAM_STANDIN_LOG: log,
        ...env,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const timer = setTimeout(() => child.kill('SIGINT'), runMs);
  const code = await exited;
  clearTimeout(timer);
  return { code, stderr, log: existsSync(log) ? readFileSync(log, 'utf8') : '' };
}

describe('the rpicam-vid stand-in models what the configuration changes (else the box tests prove nothing)', () => {
  it('without a raised timeout, a pulse pause longer than 1 s is a libcamera frame timeout; with one, none', async () => {
    const good = path.join(dir, 'pisp-10s.yaml');
    writeFileSync(good, pipelineConfigText(null, null, 'pisp', 10_000));
    const [plain, raised] = await Promise.all([standinRun({}, 2600, 2400), standinRun({ LIBCAMERA_RPI_CONFIG_FILE: good }, 2600, 2400)]);
    assert.match(plain.stderr, /ERROR RPI pipeline_base\.cpp:\d+ Camera frontend has timed out!/);
    assert.match(plain.stderr, /ERROR: Device timeout detected, attempting a restart!!!/);
    assert.ok((plain.log.match(/camera-timeout camera=0 after_ms=1000$/gm) ?? []).length >= 1, plain.log);
    assert.doesNotMatch(raised.stderr, /timed out/);
    assert.doesNotMatch(raised.log, /camera-timeout/);
    assert.match(raised.log, new RegExp(`^rpicam-vid-env camera=0 LIBCAMERA_RPI_CONFIG_FILE=${good.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'));
  });

  it('a file for the wrong pipeline: libcamera registers no camera', async () => {
    const wrong = path.join(dir, 'vc4.yaml');
    writeFileSync(wrong, pipelineConfigText(null, null, 'bcm2835', 10_000));
    const r = await standinRun({ LIBCAMERA_RPI_CONFIG_FILE: wrong }, 2000, 5000);
    assert.equal(r.code, 255);
    assert.match(r.stderr, /Unexpected target reported: expected "pisp", got bcm2835/);
    assert.match(r.stderr, /no cameras available/);
  });
});

describe("the sensor's trigger_mode is not left at 1 for a free-running camera", () => {
  const sysRoot = path.join(dir, 'sys');
  const param = path.join(sysRoot, 'sys/module/imx296/parameters/trigger_mode');
  mkdirSync(path.dirname(param), { recursive: true });
  const standinLog = path.join(dir, 'box-standin.log');
  const pulses = path.join(dir, 'box-pulses.txt');
  // 20 Hz for 60 s, for camera 0 only (camera 1 free-runs); the same fixture for the GPIO line is not needed here.
  writePulseFixture(pulses, 17, Array.from({ length: 1200 }, (_, i) => 1_000_000_000_000n + BigInt(i) * 50_000_000n), 5_000_000n);
  Object.assign(process.env, {
    PATH: `${standins}${path.delimiter}${process.env.PATH ?? ''}`,
    RIGCAM_RPICAM_FIXTURE: listing,
    RIGCAM_STANDIN_LOG: standinLog,
    RIGCAM_RPICAM_TRIGGER_CAMERA: '0',
  });
  delete process.env.LIBCAMERA_RPI_CONFIG_FILE;
  const free = { id: 'gs1', source: 'rpicam', device: 1, width: 320, height: 240, fps: 20, gop_seconds: 0.5 };
  const triggered = { id: 'gs0', source: 'rpicam', device: 0, width: 320, height: 240, fps: 20, gop_seconds: 0.5, rpicam: { shutter_us: 5000 }, trigger: { mode: 'external', pulse_line: 17 } };
  const gpio = { inputs: [{ line: 17, mode: 'sync' }] };
  let t: TestBox | null = null;
  after(async () => {
    await t?.close();
  });

  it('left at 1 (a triggered config before, or another program): set to 0 before the free-running camera starts', async () => {
    writeFileSync(param, '1\n');
    t = await startTestBox({ sysRoot, extra: { cameras: [free] } });
    const cam = t.box.cameras.get('gs1')!;
    assert.equal(cam.state, 'ready', String(cam.lastError));
    assert.equal(readFileSync(param, 'utf8').trim(), '0');
    assert.match(readFileSync(standinLog, 'utf8'), /^rpicam-vid-env camera=1 LIBCAMERA_RPI_CONFIG_FILE=\(unset\)$/m, 'a free-running camera gets no pipeline configuration');
    await t.close();
    t = null;
  });

  it('one driver, one setting: a free-running camera beside a triggered one of the same sensor is refused with the reason', async () => {
    writeFileSync(param, '0\n');
    process.env.RIGCAM_RPICAM_TRIGGER_FIXTURE = pulses;
    process.env.GPIOMON_RESTAMP_ORIGIN_NS = String(process.hrtime.bigint() + 5_000_000_000n);
    t = await startTestBox({ sysRoot, extra: { cameras: [triggered, free], gpio } });
    const gs0 = t.box.cameras.get('gs0')!;
    const gs1 = t.box.cameras.get('gs1')!;
    assert.equal(gs0.state, 'ready', String(gs0.lastError));
    assert.equal(readFileSync(param, 'utf8').trim(), '1');
    // Whichever started first, the free-running camera's next start finds the driver in trigger mode, held by gs0.
    if (gs1.state === 'ready') {
      const r = await t.box.handleCommand('control_change', { camera_id: 'gs1', control: 'gain', value: 2 }, { source: 'api' });
      assert.equal(r.ok, false);
    }
    await until('gs1 refused', () => gs1.state === 'error', 20_000);
    assert.match(String(gs1.lastError), /camera gs1 is free-running, but camera gs0 triggers the same sensor driver \(\/sys\/module\/imx296\/parameters\/trigger_mode is one setting for every imx296\)/);
    assert.equal(readFileSync(param, 'utf8').trim(), '1', 'the triggered camera keeps its trigger mode');
    await t.close();
    t = null;
    assert.equal(readFileSync(param, 'utf8').trim(), '0', 'set back to 0 once the triggered camera stopped');
  });
});
