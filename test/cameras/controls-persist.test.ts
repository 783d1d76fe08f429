import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startHttpBox, type HttpBox } from '../helpers/box.ts';
import { repoRoot } from '../helpers/cli.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { sleep } from '../runtime/runtime-helpers.ts';

// A USB camera whose "driver" keeps its control values: the v4l2-ctl stand-in with RIGCAM_V4L2_STATE (values set
// are read back by -C and the listings; a replaced device node starts from the defaults, as a replugged camera
// does; an inactive control is refused), the C922's recorded listing, and the v4l2-camera ffmpeg stand-in.
const dir = tmpDir();
const dev = path.join(dir, 'dev', 'video0');
const driverState = path.join(dir, 'driver');
const ctlLog = path.join(dir, 'v4l2-ctl.log');
mkdirSync(path.dirname(dev));
mkdirSync(path.join(dir, 'fixtures'));
symlinkSync(path.join(repoRoot, 'hw-fixtures/v4l2/logitech-c922'), path.join(dir, 'fixtures', 'video0'));
process.env.PATH = `${path.join(repoRoot, 'test/standins/v4l2-camera')}:${path.join(repoRoot, 'test/standins')}:${process.env.PATH}`;
process.env.RIGCAM_FIXTURE_DIR = path.join(dir, 'fixtures');
process.env.RIGCAM_V4L2_STATE = driverState;
process.env.RIGCAM_STANDIN_LOG = ctlLog;
writeFileSync(dev, '');

const dataDir = path.join(dir, 'data');
const configured = { auto_exposure: 'Manual Mode', exposure_time_absolute: 100, brightness: 140 };
const usb = (controls: Record<string, unknown> = configured) => ({ id: 'usb', source: 'v4l2', device: dev, input_format: 'mjpeg', width: 640, height: 480, fps: 30, controls });
const extra = (controls?: Record<string, unknown>) => ({
  data_dir: dataDir,
  cameras: [usb(controls)],
  supervisor: { restart_initial_ms: 200, restart_max_ms: 500, healthy_after_ms: 5000 },
});

/** What the camera's driver holds, read with the tool itself (not through rigcam). */
function driver(...names: string[]): Record<string, number> {
  const out = execFileSync('v4l2-ctl', ['-d', dev, '-C', names.join(',')], { encoding: 'utf8' });
  return Object.fromEntries(out.trim().split('\n').map((l) => [l.split(':')[0]!, Number(l.split(':')[1])]));
}
const stateFile = path.join(dataDir, 'camera-controls.json');
const remembered = (): Record<string, number> => (JSON.parse(readFileSync(stateFile, 'utf8')) as { cameras: Record<string, { controls: Record<string, number> }> }).cameras.usb?.controls ?? {};
/** The last controls_applied of the camera, from the journal (it may have come before the box was handed over). */
const lastApplied = (b: HttpBox, trigger: 'start' | 'restart'): { applied: Record<string, number>; errors: string[] } | undefined => {
  const rows = b.db.prepare("SELECT payload FROM events WHERE kind = 'status' AND name = 'controls_applied' ORDER BY id DESC").all() as Array<{ payload: string }>;
  return rows.map((r) => JSON.parse(r.payload) as { trigger: string; applied: Record<string, number>; errors: string[] }).find((p) => p.trigger === trigger);
};
const command = async (b: HttpBox, cmd: string, payload: Record<string, unknown>) => {
  const res = await b.api('/api/commands', { json: { command: cmd, payload } });
  return { status: res.status, body: (await res.json()) as { ok: boolean; error?: string; data?: Record<string, unknown> } };
};

describe('camera settings that stick: config controls and remembered control_change', () => {
  let b: HttpBox;
  before(async () => {
    b = await startHttpBox({ extra: extra() });
  });
  after(async () => {
    await b?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('at start: the config controls are applied (automatic mode first), read back, and the exposure stays fixed', async () => {
    const applied = lastApplied(b, 'start');
    assert.ok(applied, 'controls_applied at start, journaled');
    assert.deepEqual(applied.errors, []);
    assert.deepEqual(driver('auto_exposure', 'exposure_time_absolute', 'brightness', 'exposure_dynamic_framerate'), {
      auto_exposure: 1,
      exposure_time_absolute: 100,
      brightness: 140,
      exposure_dynamic_framerate: 0, // manual exposure: the frame rate must not drop in the dark
    });
    assert.deepEqual(applied.applied, { auto_exposure: 1, exposure_time_absolute: 100, brightness: 140, exposure_dynamic_framerate: 0 });
    // The stand-in refuses an inactive control: exposure only went through because auto_exposure was set first.
    const sets = readFileSync(ctlLog, 'utf8').split('\n').filter((l) => l.includes('--set-ctrl'));
    assert.ok(sets.findIndex((l) => l.includes('auto_exposure=1')) < sets.findIndex((l) => l.includes('exposure_time_absolute=100')));
    assert.equal(b.box.cameras.get('usb')!.lastError, null);
  });

  it('control_change over HTTP is remembered (atomically, in the data dir) unless persist is false; both are journaled', async () => {
    const kept = await command(b, 'control_change', { camera_id: 'usb', control: 'brightness', value: 90 });
    assert.equal(kept.body.ok, true, kept.body.error);
    assert.equal(kept.body.data!.persisted, true);
    const once = await command(b, 'control_change', { camera_id: 'usb', control: 'contrast', value: 50, persist: false });
    assert.equal(once.body.ok, true, once.body.error);
    assert.equal(once.body.data!.persisted, false);
    assert.deepEqual(driver('brightness', 'contrast'), { brightness: 90, contrast: 50 });
    assert.deepEqual(remembered(), { brightness: 90 });
    assert.deepEqual(readdirSync(dataDir).filter((f) => f.startsWith('camera-controls')), ['camera-controls.json'], 'no temporary file left');
    const bad = await command(b, 'control_change', { camera_id: 'usb', control: 'brightness', value: 90, persist: 'no' });
    assert.equal(bad.status, 400);
    const journal = b.db.prepare("SELECT payload FROM events WHERE kind = 'status' AND name = 'control_changed' ORDER BY id").all() as Array<{ payload: string }>;
    assert.deepEqual(
      journal.map((r) => JSON.parse(r.payload) as Record<string, unknown>).map((p) => [p.control, p.value, p.persisted]),
      [['brightness', 90, true], ['contrast', 50, false]],
    );
  });

  it('the sidecar holds the controls in effect at the start of a recording and the changes during it', async () => {
    const start = await command(b, 'start_recording', { session_prefix: 'ctl' });
    assert.equal(start.body.ok, true, start.body.error);
    await sleep(400);
    const change = await command(b, 'control_change', { camera_id: 'usb', control: 'saturation', value: 60, persist: false });
    assert.equal(change.body.ok, true, change.body.error);
    await sleep(300);
    const stop = await command(b, 'stop_recording', {});
    assert.equal(stop.body.ok, true, stop.body.error);
    const rec = (stop.body.data!.recordings as Array<{ path: string }>)[0]!;
    const sidecar = JSON.parse(readFileSync(path.join(b.root, rec.path).replace(/\.ts$/, '.json'), 'utf8')) as {
      controls: { at_start: Record<string, number>; changes: Array<{ control: string; value: number; persisted: boolean; mono_us: number }> };
    };
    assert.equal(sidecar.controls.at_start.brightness, 90);
    assert.equal(sidecar.controls.at_start.exposure_time_absolute, 100);
    assert.equal(sidecar.controls.at_start.saturation, 128);
    assert.deepEqual(sidecar.controls.changes.map((c) => [c.control, c.value, c.persisted]), [['saturation', 60, false]]);
  });

  it('a source that crashes is restarted with the controls applied again', async () => {
    execFileSync('v4l2-ctl', ['-d', dev, '--set-ctrl=brightness=10']); // changed behind rigcam's back
    const seen = b.box.cameras.get('usb')!;
    const count = (): number => (b.db.prepare("SELECT count(*) AS n FROM events WHERE name = 'controls_applied'").get() as { n: number }).n;
    const before = count();
    process.kill(seen.stats()!.sourcePid!, 'SIGKILL');
    const again = await b.waitStatus('controls_applied', (s) => s.camera_id === 'usb' && s.data.trigger === 'restart', 40_000);
    assert.deepEqual(again.data.errors, []);
    assert.ok(count() > before, 'journaled');
    assert.equal(driver('brightness').brightness, 90, 'the remembered value, not the config\'s 140 nor the stray 10');
  });

  it('a replugged camera (its controls back at the defaults) gets config and remembered controls again; persist:false is gone', async () => {
    rmSync(dev);
    await b.waitStatus('source_exited', (s) => s.camera_id === 'usb' && s.data.problem === 'missing_device', 20_000);
    writeFileSync(dev, ''); // a new device node: the stand-in's driver starts from the defaults
    const applied = await b.waitStatus('controls_applied', (s) => s.camera_id === 'usb' && s.data.trigger === 'restart', 40_000);
    assert.deepEqual(applied.data.errors, []);
    assert.deepEqual(driver('auto_exposure', 'exposure_time_absolute', 'brightness', 'contrast', 'exposure_dynamic_framerate'), {
      auto_exposure: 1,
      exposure_time_absolute: 100,
      brightness: 90,
      contrast: 128, // persist:false was not kept: the camera's default
      exposure_dynamic_framerate: 0,
    });
  });

  it('a new box on the same data directory (camera power-cycled) applies the remembered change over the config', async () => {
    await b.close();
    rmSync(driverState, { recursive: true, force: true });
    b = await startHttpBox({ extra: extra() });
    assert.deepEqual(lastApplied(b, 'start')?.errors, []);
    assert.deepEqual(driver('brightness', 'exposure_time_absolute', 'contrast'), { brightness: 90, exposure_time_absolute: 100, contrast: 128 });
  });

  it('a value the driver clamps is reported, and not remembered', async () => {
    process.env.RIGCAM_V4L2_CLAMP = 'exposure_time_absolute=150';
    try {
      const r = await command(b, 'control_change', { camera_id: 'usb', control: 'exposure_time_absolute', value: 300 });
      assert.equal(r.body.ok, false);
      assert.match(r.body.error!, /exposure_time_absolute: set to 300, but the camera holds 150 \(read back\); not remembered/);
      assert.equal(remembered().exposure_time_absolute, undefined);
    } finally {
      delete process.env.RIGCAM_V4L2_CLAMP;
    }
  });

  it('at start, a clamped value and a control the camera lacks are errors naming them (status, last_error, warning)', async () => {
    await b.close();
    process.env.RIGCAM_V4L2_CLAMP = 'exposure_time_absolute=50';
    try {
      b = await startHttpBox({ extra: extra({ ...configured, no_such_control: 1 }) });
      const errors = lastApplied(b, 'start')?.errors ?? [];
      assert.equal(errors.length, 2, errors.join('\n'));
      assert.match(errors.join('\n'), /control no_such_control \(config\): the camera has no such control/);
      assert.match(errors.join('\n'), /control exposure_time_absolute: set to 100, but the camera holds 50 \(read back\)/);
      const cam = (await (await b.api('/api/status')).json()) as { cameras: Array<{ camera_id: string; last_error: string | null; state: string }> };
      const st = cam.cameras.find((c) => c.camera_id === 'usb')!;
      assert.equal(st.state, 'ready', 'the video goes on');
      assert.match(st.last_error ?? '', /no_such_control/);
      const warnings = b.db.prepare("SELECT camera_id, payload FROM events WHERE kind = 'status' AND name = 'warning'").all() as Array<{ camera_id: string; payload: string }>;
      assert.ok(warnings.some((w) => w.camera_id === 'usb' && /controls not as wanted: .*no_such_control/.test(w.payload)), JSON.stringify(warnings));
    } finally {
      delete process.env.RIGCAM_V4L2_CLAMP;
    }
  });

  it('a corrupt state file: a warning, set aside, the config controls apply, the box runs', async () => {
    await b.close();
    rmSync(driverState, { recursive: true, force: true });
    appendFileSync(stateFile, '{ torn');
    b = await startHttpBox({ extra: extra() });
    assert.equal(b.box.cameras.get('usb')!.state, 'ready');
    const warnings = b.db.prepare("SELECT payload FROM events WHERE kind = 'status' AND name = 'warning'").all() as Array<{ payload: string }>;
    assert.ok(warnings.some((w) => /camera-controls\.json is unreadable \(.*\); set aside as camera-controls\.json\.corrupt-\d+, the config's controls apply/.test(w.payload)), JSON.stringify(warnings));
    assert.deepEqual(lastApplied(b, 'start')?.errors, []);
    assert.equal(driver('brightness').brightness, 140, 'the config value');
    assert.equal(existsSync(stateFile), false);
    assert.equal(readdirSync(dataDir).filter((f) => f.startsWith('camera-controls.json.corrupt-')).length, 1);
    const r = await command(b, 'control_change', { camera_id: 'usb', control: 'brightness', value: 70 });
    assert.equal(r.body.ok, true, r.body.error);
    assert.deepEqual(remembered(), { brightness: 70 });
  });
});
