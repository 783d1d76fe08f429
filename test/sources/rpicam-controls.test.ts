import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { Writable } from 'node:stream';
import { ControlStateStore } from '../../src/cameras/control-state.ts';
import { parseConfig } from '../../src/config/load.ts';
import { createLogger } from '../../src/log/logger.ts';
import { parseRpicamControl, rpicamControlArgs } from '../../src/sources/rpicam-controls.ts';
import { rpicamVidArgs, type RpicamSourceOptions } from '../../src/sources/rpicam-source.ts';
import { repoRoot } from '../helpers/cli.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { startTestBox, type TestBox } from '../runtime/runtime-helpers.ts';

// The box below runs rpicam-vid from PATH: the stand-in (it checks every option like the real tool and logs its
// argv), one process per camera at a time as libcamera allows (RIGCAM_RPICAM_LOCK_DIR).
const dir = tmpDir('rigcam-csi-controls-');
const standinLog = path.join(dir, 'standins.log');
const lockDir = path.join(dir, 'locks');
mkdirSync(lockDir);
writeFileSync(standinLog, '');
process.env.PATH = `${path.join(repoRoot, 'test/standins')}${path.delimiter}${process.env.PATH ?? ''}`;
process.env.RIGCAM_RPICAM_FIXTURE = path.join(repoRoot, 'hw-fixtures/rpicam/pi4-imx708-wide/list-cameras.txt');
process.env.RIGCAM_STANDIN_LOG = standinLog;
process.env.RIGCAM_RPICAM_LOCK_DIR = lockDir;
delete process.env.RIGCAM_RPICAM_VERSION;

const base: RpicamSourceOptions = { camera: 0, width: 640, height: 480, fps: 30, gopSeconds: 1, bitrateKbps: 2000, encoder: 'libx264' };

/** The argv of every rpicam-vid run so far (not --version / --list-cameras calls). */
function runs(): string[][] {
  return readFileSync(standinLog, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('rpicam-vid --camera'))
    .map((l) => l.split(' ').slice(1));
}
function optionOf(argv: string[], flag: string): string | undefined {
  const i = argv.indexOf(flag);
  return i >= 0 ? argv[i + 1] : undefined;
}
/** rpicam-vid processes alive now (the stand-in is a node script named rpicam-vid). */
/** Whether a process descends from this test process (other test files run their own stand-ins meanwhile). */
function ours(pid: number): boolean {
  for (let p = pid, hops = 0; p > 1 && hops < 64; hops++) {
    if (p === process.pid) return true;
    try {
      // /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold spaces, so read after its closing paren.
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      p = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    } catch {
      return false;
    }
  }
  return false;
}

/** rpicam-vid stand-ins of this box running now. */
function liveRpicam(): number {
  try {
    const pids = execFileSync('pgrep', ['-f', `${path.join(repoRoot, 'test/standins/rpicam-vid')} --camera`]).toString().trim().split('\n').filter(Boolean);
    return pids.map(Number).filter(ours).length;
  } catch {
    return 0;
  }
}

describe('CSI controls → rpicam-vid options', () => {
  it('maps each control to its option; automatic (0) shutter and gain are left out', () => {
    assert.deepEqual(rpicamControlArgs({ shutter_us: 8000, gain: 2.5, awb: 'daylight', awbgains: [1.5, 2], denoise: 'cdn_off', lens_position: 0.5 }), [
      '--shutter', '8000', '--gain', '2.5', '--awb', 'daylight', '--awbgains', '1.5,2', '--denoise', 'cdn_off', '--lens-position', '0.5',
    ]);
    assert.deepEqual(rpicamControlArgs({ shutter_us: 0, gain: 0, lens_position: 'default' }), ['--lens-position', 'default']);
    assert.deepEqual(rpicamControlArgs(undefined), []);
    const a = rpicamVidArgs({ ...base, controls: { shutter_us: 10_000 }, sync: 'client' });
    assert.equal(optionOf(a, '--shutter'), '10000');
    assert.equal(optionOf(a, '--sync'), 'client');
    assert.equal(a.at(-2), '--output', 'the output stays last');
    assert.equal(rpicamVidArgs({ ...base, sync: 'off' }).includes('--sync'), false);
  });

  it('refuses values rpicam-vid would reject or misread, naming what is allowed', () => {
    for (const [name, value] of [
      ['gain', 100],
      ['gain', 0.5],
      ['shutter_us', -1],
      ['shutter_us', 1.5],
      ['awb', 'sunny'],
      ['awbgains', '1.5'],
      ['awbgains', '1.5,2;rm'],
      ['denoise', 'max'],
      ['lens_position', 'near'],
      ['shutter_us', '8000'],
    ] as const) {
      const r = parseRpicamControl(name, value);
      assert.equal(r.ok, false, `${name}=${value} refused`);
    }
    const unknown = parseRpicamControl('brightness', 1);
    assert.ok(!unknown.ok && /shutter_us, gain, awb, awbgains, denoise, lens_position/.test(unknown.error));
    const gains = parseRpicamControl('awbgains', ' 1.5 , 2.25 ');
    assert.ok(gains.ok);
    assert.deepEqual(gains.value, [1.5, 2.25]);
  });

  it('the config takes them for CSI cameras only', () => {
    const ok = parseConfig({ cameras: [{ id: 'c', source: 'rpicam', device: 0, rpicam: { shutter_us: 5000, awbgains: [1.2, 1.8] }, sync: 'server' }] });
    assert.deepEqual(ok.cameras[0]!.rpicam, { shutter_us: 5000, awbgains: [1.2, 1.8] });
    assert.throws(() => parseConfig({ cameras: [{ id: 'u', source: 'v4l2', device: '/dev/video0', rpicam: { gain: 2 } }] }), /"rpicam" controls are for CSI cameras/);
    assert.throws(() => parseConfig({ cameras: [{ id: 'u', source: 'test', sync: 'client' }] }), /"sync" is rpicam-vid's --sync/);
    assert.throws(() => parseConfig({ cameras: [{ id: 'c', source: 'rpicam', rpicam: { exposure: 5 } }] }), /exposure/);
  });
});

describe('remembered CSI controls in camera-controls.json', () => {
  const lines: string[] = [];
  const log = createLogger({ level: 'warn', destination: new Writable({ write: (c: Buffer, _e, cb) => (lines.push(c.toString()), cb()) }) });

  it('reads a file without CSI entries, adds them beside the V4L2 ones, and keeps both across a re-read', () => {
    const data = tmpDir();
    const file = path.join(data, 'camera-controls.json');
    writeFileSync(file, JSON.stringify({ format: 'rigcam-camera-controls/1', cameras: { usb: { device: '/dev/video0', controls: { brightness: 90 }, updated_at: '2026-01-01T00:00:00Z' } } }));
    const a = new ControlStateStore(data, log);
    assert.equal(a.problem, null);
    a.setRpicam('csi', 'shutter_us', 12000);
    a.setRpicam('csi', 'awbgains', '1.5,2');
    a.set('csi', null, 'unused', 1); // a V4L2 set on the same id keeps its CSI options
    const b = new ControlStateStore(data, log);
    assert.deepEqual(b.get('usb'), { brightness: 90 });
    assert.deepEqual(b.getRpicam('csi'), { shutter_us: 12000, awbgains: [1.5, 2] });
    assert.deepEqual(b.getRpicam('usb'), {});
  });

  it('a hand-edited value rpicam-vid would reject is dropped with a warning (the config applies); an unknown option sets the file aside', () => {
    const data = tmpDir();
    const file = path.join(data, 'camera-controls.json');
    const entry = (rpicam: Record<string, unknown>) => JSON.stringify({ format: 'rigcam-camera-controls/1', cameras: { csi: { device: null, controls: {}, rpicam, updated_at: 'x' } } });
    writeFileSync(file, entry({ gain: 100, awb: 'daylight', awbgains: '1.5;rm -rf /' }));
    const st = new ControlStateStore(data, log);
    assert.equal(st.problem, null);
    assert.deepEqual(st.getRpicam('csi'), { awb: 'daylight' });
    assert.ok(lines.some((l) => /remembered CSI control not applied: gain: 100 is not valid/.test(l)), lines.join(''));
    assert.ok(lines.some((l) => /remembered CSI control not applied: awbgains/.test(l)));
    writeFileSync(file, entry({ exposure: 5 }));
    const odd = new ControlStateStore(data, log);
    assert.match(String(odd.problem), /is unreadable .*set aside/);
    assert.deepEqual(odd.getRpicam('csi'), {});
  });
});

describe('control_change on a CSI camera (box with the rpicam-vid stand-in)', () => {
  let t: TestBox | null = null;
  after(async () => {
    await t?.close();
  });

  it('starts with the configured controls, restarts with a changed one between trials, refuses during a trial', async () => {
    t = await startTestBox({
      extra: { cameras: [{ id: 'csi0', source: 'rpicam', device: 0, width: 320, height: 240, fps: 15, rpicam: { shutter_us: 8000, awb: 'daylight' } }] },
    });
    const cam = t.box.cameras.get('csi0')!;
    assert.equal(cam.state, 'ready', String(cam.lastError));
    const first = runs().at(-1)!;
    assert.equal(optionOf(first, '--shutter'), '8000');
    assert.equal(optionOf(first, '--awb'), 'daylight');
    assert.equal(optionOf(first, '--gain'), undefined);

    const api = { source: 'api' as const };
    const changed = t.waitStatus('control_changed');
    const r = await t.box.handleCommand('control_change', { camera_id: 'csi0', control: 'gain', value: 2.5 }, api);
    assert.equal(r.ok, true, r.error);
    assert.deepEqual((await changed).data, { camera_id: 'csi0', control: 'gain', value: 2.5, persisted: true });
    const second = runs().at(-1)!;
    assert.equal(runs().length, 2, 'one new rpicam-vid run');
    assert.equal(optionOf(second, '--gain'), '2.5');
    assert.equal(optionOf(second, '--shutter'), '8000', 'the other controls are kept');
    assert.equal(cam.state, 'ready');
    assert.equal(liveRpicam(), 1, 'the old rpicam-vid released the camera before the new one acquired it');

    const gains = await t.box.handleCommand('control_change', { camera_id: 'csi0', control: 'awbgains', value: '1.5,2.0' }, api);
    assert.equal(gains.ok, true, gains.error);
    assert.equal(optionOf(runs().at(-1)!, '--awbgains'), '1.5,2');

    // Refused values and names change nothing: no new run.
    const before = runs().length;
    const bad = await t.box.handleCommand('control_change', { camera_id: 'csi0', control: 'gain', value: 100 }, api);
    assert.equal(bad.ok, false);
    assert.equal(bad.code, 'conflict');
    const unknown = await t.box.handleCommand('control_change', { camera_id: 'csi0', control: 'exposure_time_absolute', value: 100 }, api);
    assert.equal(unknown.ok, false);
    assert.match(unknown.error ?? '', /no CSI control "exposure_time_absolute".*shutter_us/);

    // During a trial: refused with the reason, the recording goes on untouched.
    const start = await t.box.handleCommand('start_recording', {}, api);
    assert.equal(start.ok, true, start.error);
    const during = await t.box.handleCommand('control_change', { camera_id: 'csi0', control: 'shutter_us', value: 4000 }, api);
    assert.equal(during.ok, false);
    assert.equal(during.code, 'conflict');
    assert.match(during.error ?? '', /recording: CSI controls are applied by restarting rpicam-vid, which is refused during a trial/);
    assert.equal(cam.recording, true);
    const stop = await t.box.handleCommand('stop_recording', {}, api);
    assert.equal(stop.ok, true, stop.error);
    assert.equal(runs().length, before, 'no rpicam-vid run for refused changes');

    const afterTrial = await t.box.handleCommand('control_change', { camera_id: 'csi0', control: 'shutter_us', value: 4000 }, api);
    assert.equal(afterTrial.ok, true, afterTrial.error);
    const last = runs().at(-1)!;
    assert.deepEqual([optionOf(last, '--shutter'), optionOf(last, '--gain'), optionOf(last, '--awbgains'), optionOf(last, '--awb')], ['4000', '2.5', '1.5,2', 'daylight']);
    assert.equal(liveRpicam(), 1);
  });

  it('a change survives a restart of rigcam (state overrides the config for that option), is in the sidecar and the journal; persist:false does not survive', async () => {
    await t?.close();
    t = null;
    const dataDir = path.join(dir, 'restart-data');
    const extra = {
      data_dir: dataDir,
      cameras: [{ id: 'csi1', source: 'rpicam', device: 0, width: 320, height: 240, fps: 15, rpicam: { shutter_us: 8000, awb: 'daylight' } }],
    };
    const api = { source: 'api' as const };
    const a = await startTestBox({ extra });
    try {
      for (const [control, value, persist] of [
        ['shutter_us', 12000, true],
        ['awbgains', '1.25,2', true],
        ['awb', 'cloudy', false],
      ] as const) {
        const r = await a.box.handleCommand('control_change', { camera_id: 'csi1', control, value, persist }, api);
        assert.equal(r.ok, true, r.error);
        assert.equal((r.data as { persisted: boolean }).persisted, persist);
      }
      const state = JSON.parse(readFileSync(path.join(dataDir, 'camera-controls.json'), 'utf8')) as { cameras: Record<string, { rpicam?: Record<string, unknown> }> };
      assert.deepEqual(state.cameras.csi1?.rpicam, { shutter_us: 12000, awbgains: '1.25,2' }, 'persist:false is not written');
      // A trial after the changes: its sidecar carries the options the rpicam-vid run has.
      const start = await a.box.handleCommand('start_recording', {}, api);
      assert.equal(start.ok, true, start.error);
      await new Promise((r) => setTimeout(r, 300));
      const stop = await a.box.handleCommand('stop_recording', {}, api);
      assert.equal(stop.ok, true, stop.error);
      const sidecars = (readdirSync(a.root, { recursive: true }) as string[]).filter((f) => /csi1.*\.json$/.test(f));
      assert.equal(sidecars.length, 1, sidecars.join(', '));
      const sidecar = JSON.parse(readFileSync(path.join(a.root, sidecars[0]!), 'utf8')) as { controls?: { at_start: Record<string, unknown> } };
      assert.deepEqual(sidecar.controls?.at_start, { shutter_us: 12000, awb: 'cloudy', awbgains: '1.25,2' });
      const journal = a.db.prepare("SELECT payload FROM events WHERE kind = 'status' AND name = 'control_changed' ORDER BY id").all() as Array<{ payload: string }>;
      assert.deepEqual(
        journal.map((row) => JSON.parse(row.payload) as Record<string, unknown>).map((p) => [p.control, p.value, p.persisted]),
        [['shutter_us', 12000, true], ['awbgains', '1.25,2', true], ['awb', 'cloudy', false]],
      );
    } finally {
      await a.close();
    }

    const runsBefore = runs().length;
    const b = await startTestBox({ extra });
    try {
      const cam = b.box.cameras.get('csi1')!;
      assert.equal(cam.state, 'ready', String(cam.lastError));
      assert.equal(runs().length, runsBefore + 1);
      const argv = runs().at(-1)!;
      assert.equal(optionOf(argv, '--shutter'), '12000', 'the remembered shutter overrides the config');
      assert.equal(optionOf(argv, '--awbgains'), '1.25,2', 'a remembered option the config lacks');
      assert.equal(optionOf(argv, '--awb'), 'daylight', 'persist:false is gone: the config applies again');
      // And a later source restart (another control) keeps the remembered ones.
      const r = await b.box.handleCommand('control_change', { camera_id: 'csi1', control: 'denoise', value: 'cdn_off', persist: false }, api);
      assert.equal(r.ok, true, r.error);
      assert.deepEqual([optionOf(runs().at(-1)!, '--shutter'), optionOf(runs().at(-1)!, '--denoise')], ['12000', 'cdn_off']);
    } finally {
      await b.close();
    }
  });
});
