import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { repoRoot } from '../helpers/cli.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { ffprobeCount, sleep, startTestBox, type TestBox } from '../runtime/runtime-helpers.ts';

// A USB camera we can unplug: a stand-in ffmpeg for its V4L2 input (test/standins/v4l2-camera), the recorded
// v4l2-ctl outputs of a Logitech C922 for probing, and a file standing for the device node.
const dir = tmpDir();
const dev = path.join(dir, 'dev', 'video0');
mkdirSync(path.dirname(dev));
mkdirSync(path.join(dir, 'fixtures'));
symlinkSync(path.join(repoRoot, 'hw-fixtures/v4l2/logitech-c922'), path.join(dir, 'fixtures', 'video0'));
process.env.PATH = `${path.join(repoRoot, 'test/standins/v4l2-camera')}:${path.join(repoRoot, 'test/standins')}:${process.env.PATH}`;
process.env.RIGCAM_FIXTURE_DIR = path.join(dir, 'fixtures');

describe('hot-plug: a USB camera unplugged mid-trial and plugged back', () => {
  let t: TestBox;
  before(async () => {
    writeFileSync(dev, '');
    t = await startTestBox({
      cameras: 0,
      extra: {
        cameras: [
          { id: 'usb', source: 'v4l2', device: dev, input_format: 'mjpeg', width: 640, height: 480, fps: 30 },
          { id: 'cam1', source: 'test', width: 320, height: 240, fps: 30 },
        ],
        supervisor: { restart_initial_ms: 200, restart_max_ms: 500, healthy_after_ms: 5000 },
      },
    });
  });
  after(async () => t.close());

  it('the V4L2 camera is probed from its real listing and records through the pipeline', () => {
    const ready = t.statuses.find((s) => s.status === 'device_ready' && s.data.camera_id === 'usb');
    assert.ok(ready, `usb camera ready: ${JSON.stringify(t.statuses.filter((s) => s.status === 'device_error'))}`);
    assert.equal(ready.data.resolution, '640x480');
    assert.equal(ready.data.encoder, 'libx264');
    const caps = t.box.cameras.get('usb')!.capabilities!;
    assert.ok(caps.modes.some((m) => m.format === 'MJPG' && m.width === 1920), 'modes from the C922 listing');
  });

  it('control_change is validated against the probed controls and applied with v4l2-ctl', async () => {
    const log = path.join(dir, 'v4l2-ctl.log');
    process.env.RIGCAM_STANDIN_LOG = log;
    const ok = await t.box.handleCommand('control_change', { camera_id: 'usb', control: 'brightness', value: 140 }, { source: 'api' });
    assert.equal(ok.ok, true, ok.error);
    assert.match(readFileSync(log, 'utf8'), /--set-ctrl=brightness=140/);
    for (const [control, value, why] of [
      ['brightness', 300, /max|range|255/],
      ['power_line_frequency', 7, /no menu item '7'; choose one of: 0 \(Disabled\), 1 \(50 Hz\), 2 \(60 Hz\)/],
      ['no_such_control', 1, /no control "no_such_control"/],
    ] as const) {
      const before = readFileSync(log, 'utf8');
      const r = await t.box.handleCommand('control_change', { camera_id: 'usb', control, value }, { source: 'api' });
      assert.equal(r.ok, false, `${control}=${value} refused`);
      assert.match(r.error!, why);
      assert.equal(readFileSync(log, 'utf8'), before, 'nothing was sent to the camera');
    }
    delete process.env.RIGCAM_STANDIN_LOG;
  });

  it('unplugged mid-trial: its file is finalised (playable, marked), device_error, the other camera goes on', async () => {
    const start = await t.box.handleCommand('start_recording', { session_prefix: 'plug' }, { source: 'api' });
    assert.equal(start.ok, true, start.error);
    await sleep(1500);
    rmSync(dev);
    const err = await t.waitStatus('device_error', (s) => s.data.camera_id === 'usb', 10_000);
    assert.equal(err.data.unplugged, true);
    const recs = err.data.recordings as Array<{ recording_id: number; frames: number; state: string }>;
    assert.equal(recs.length, 1);
    const row = t.store.recording(recs[0]!.recording_id)!;
    assert.equal(row.state, 'interrupted');
    assert.equal(row.stop_reason, 'camera unplugged');
    assert.ok(row.frame_count > 20, `frames before the unplug: ${row.frame_count}`);
    assert.equal(ffprobeCount(path.join(t.root, row.path)), row.frame_count);
    assert.equal(t.store.frameCount(row.id), row.frame_count);
    assert.equal(t.box.status().recording, true, 'the trial goes on with the other camera');
    assert.equal(t.box.cameras.get('usb')!.state, 'error');
  });

  it('plugged back: re-assigned by itself (device_ready), and records in the next trial', async () => {
    writeFileSync(dev, '');
    const back = await t.waitStatus('device_ready', (s) => s.data.camera_id === 'usb' && s.data.reassigned === true, 15_000);
    assert.ok(back, 'device_ready again');
    assert.equal(t.box.cameras.get('usb')!.state, 'ready');
    const stop = await t.box.handleCommand('stop_recording', {}, { source: 'api' });
    assert.equal(stop.ok, true, stop.error);
    const next = await t.box.handleCommand('start_recording', { session_prefix: 'plug' }, { source: 'api' });
    assert.equal(next.ok, true, next.error);
    assert.deepEqual((next.data!.recordings as Array<{ camera_id: string }>).map((r) => r.camera_id).sort(), ['cam1', 'usb']);
    await sleep(1000);
    const s2 = await t.box.handleCommand('stop_recording', {}, { source: 'api' });
    for (const r of s2.data!.recordings as Array<{ recording_id: number; path: string; frames: number; state: string }>) {
      assert.equal(r.state, 'complete');
      assert.equal(ffprobeCount(path.join(t.root, r.path)), r.frames);
    }
  });
});
