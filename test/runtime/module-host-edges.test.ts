// `rigcam module` under RPi_Logger's host: the edges the acceptance test (rpi-logger-host.test.ts) does not walk —
// bad launch flags, a record while a trial is paused, a mode the camera does not offer, a USB request without a
// device, unknown assign fields, SIGINT during a trial. Test-source cameras (named explicitly) keep it quick.
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { repoRoot, rigcamBin, runCli } from '../helpers/cli.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { ffprobeCount, sleep } from './runtime-helpers.ts';

interface Line {
  status: string;
  data: Record<string, unknown>;
  command_id: string | null;
}

class Module {
  readonly lines: Line[] = [];
  readonly exit: Promise<number | null>;
  stderr = '';
  readonly child: ChildProcessWithoutNullStreams;
  constructor(cfg: string, args: string[], env: NodeJS.ProcessEnv = process.env) {
    this.child = spawn(process.execPath, [rigcamBin, '--config', cfg, 'module', ...args], { stdio: ['pipe', 'pipe', 'pipe'], env });
    this.child.stderr.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exit = new Promise((r) => this.child.on('close', r));
    createInterface({ input: this.child.stdout }).on('line', (l) => this.lines.push(JSON.parse(l) as Line));
  }
  send(cmd: Record<string, unknown>): void {
    this.child.stdin.write(JSON.stringify({ timestamp: new Date().toISOString().slice(0, 23), ...cmd }) + '\n');
  }
  mark(): number {
    return this.lines.length;
  }
  async next(status: string, from: number, pred: (l: Line) => boolean = () => true, timeoutMs = 20_000): Promise<Line> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.lines.slice(from).find((l) => l.status === status && pred(l));
      if (hit) return hit;
      if (Date.now() > deadline) throw new Error(`no ${status}; got ${this.lines.slice(from).map((l) => `${l.status}(${String(l.data.message ?? '')})`).join(', ')}\n${this.stderr.slice(-1500)}`);
      await sleep(100);
    }
  }
  statuses(from: number): string[] {
    return this.lines.slice(from).map((l) => l.status);
  }
}

const dir = tmpDir('rigcam-module-edges-');
const root = path.join(dir, 'rec');
const cfg = path.join(dir, 'rigcam.yaml');
writeFileSync(cfg, `data_dir: ${dir}\nrecordings_dir: ${root}\ncameras: []\n`);

describe('rigcam module: launch flags are validated before anything starts', () => {
  it('a bad flag value exits 2 naming the flag; --auto-start-recording is refused; an --output-dir other than recordings_dir is refused', async () => {
    const bad = await runCli(['--config', cfg, 'module', '--log-level', 'loud']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--log-level/);
    assert.equal(bad.stdout, '', 'no ready before the flags are valid');
    const auto = await runCli(['--config', cfg, 'module', '--auto-start-recording']);
    assert.equal(auto.code, 2);
    assert.match(auto.stderr, /auto-start-recording/);
    const other = await runCli(['--config', cfg, 'module', '--output-dir', path.join(dir, 'elsewhere')]);
    assert.equal(other.code, 2);
    assert.match(other.stderr, /--output-dir .* is not the configured recordings_dir/);
    const unknown = await runCli(['--config', cfg, 'module', '--frobnicate']);
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /unknown option '--frobnicate'/);
  });
});

describe('rigcam module: the host flow around pause, refusals and signals', () => {
  const m = new Module(cfg, ['--output-dir', root, '--instance-id', 'EDGES:1', '--log-level', 'warning']);
  const db = path.join(dir, 'modules', 'EDGES_1', 'rigcam.db');
  const session = path.join(root, 'session_20260106_090000');
  after(() => m.child.kill('SIGKILL'));

  it('unassign_all_devices with nothing assigned is still answered (device_id "", port_released false)', async () => {
    await m.next('ready', 0);
    // `ready` comes before the runtime has loaded (the host's 10 s): the first answer can take a while.
    m.send({ command: 'get_status', command_id: 'g0' });
    await m.next('status_report', 0, (l) => l.command_id === 'g0', 30_000);
    const from = m.mark();
    m.send({ command: 'unassign_all_devices', command_id: 'shutdown-00000001' });
    const un = await m.next('device_unassigned', from, (l) => l.command_id === 'shutdown-00000001', 2000);
    assert.deepEqual(un.data, { device_id: '', port_released: false });
  });

  it('the host commands that concern a window or other devices are each a command_nack, never an error status', async () => {
    await m.next('ready', 0, () => true, 30_000);
    for (const command of ['show_window', 'hide_window', 'get_geometry', 'take_snapshot', 'set_log_level', 'xbee_data', 'xbee_send_result', 'toggle_preview']) {
      const from = m.mark();
      m.send({ command, command_id: `na-${command}`, camera_id: 0, enabled: true });
      const nack = await m.next('command_nack', from, (l) => l.command_id === `na-${command}`, 30_000);
      assert.equal(nack.data.code, 'unknown_command', command);
      assert.ok(!m.statuses(from).includes('error'), `${command}: ${m.statuses(from).join(', ')}`);
    }
  });

  it('a real camera that cannot be served is device_error with data.error and the host device_id, and a command_nack — never device_ready, never error', async () => {
    let from = m.mark();
    m.send({ command: 'assign_device', command_id: 'u:1', device_id: 'usb:usb1-1.4', device_type: 'USB_Camera', port: '', baudrate: 0, is_wireless: false, is_network: false, is_camera: true, camera_type: 'usb', camera_stable_id: 'usb1-1.4' });
    const err = await m.next('device_error', from, (l) => l.command_id === 'u:1');
    assert.equal(err.data.device_id, 'usb:usb1-1.4');
    assert.match(String(err.data.error), /no device path/);
    await m.next('command_nack', from, (l) => l.command_id === 'u:1');
    assert.ok(!m.statuses(from).includes('device_ready') && !m.statuses(from).includes('error'), m.statuses(from).join());
    // A misspelt host field is refused by name, nothing assigned.
    from = m.mark();
    m.send({ command: 'assign_device', command_id: 'u:2', device_id: 'test:0', camera_type: 'test', camera_stable_id: 'test0', dispaly_name: 'x' });
    const nack = await m.next('command_nack', from, (l) => l.command_id === 'u:2');
    assert.match(String(nack.data.message), /dispaly_name/);
    assert.ok(!m.statuses(from).includes('device_ready'));
  });

  it('a test camera named explicitly; a record while paused finalises the paused trial before the next one; apply_config during the trial is a nack', async () => {
    let from = m.mark();
    m.send({ command: 'assign_device', command_id: 't:1', device_id: 'test:0', camera_type: 'test', camera_stable_id: 'test0', display_name: 'Pattern' });
    const ready = await m.next('device_ready', from, (l) => l.command_id === 't:1');
    assert.equal(ready.data.source, 'test');
    assert.equal(ready.data.device_id, 'test:0');

    from = m.mark();
    m.send({ command: 'record', session_dir: session, trial_number: 1 });
    await m.next('recording_started', from);
    await sleep(1200);
    m.send({ command: 'pause_recording' });
    await m.next('recording_paused', from);
    m.send({ command: 'record', session_dir: session, trial_number: 2 });
    const stopped = await m.next('recording_stopped', from);
    const started2 = await m.next('recording_started', from, (l) => l.data.trial === 2);
    assert.equal(stopped.data.trial, 1);
    assert.ok(m.lines.indexOf(stopped) < m.lines.indexOf(started2), 'trial 1 finalised before trial 2 starts');
    assert.ok(!m.statuses(from).includes('error') && !m.statuses(from).includes('command_nack'), m.statuses(from).join());

    // apply_config is refused during the trial (nack, not error), naming why.
    from = m.mark();
    m.send({ command: 'apply_config', command_id: 'c:1', record_fps: '15' });
    const refused = await m.next('command_nack', from, (l) => l.command_id === 'c:1');
    assert.match(String(refused.data.message), /refused during a trial/);
  });

  it('SIGINT during a trial (a host stopped with Ctrl-C) finalises it and exits 0: file = CSV = database', async () => {
    await sleep(1200);
    m.child.kill('SIGINT');
    assert.equal(await m.exit, 0, m.stderr.slice(-2000));
    const d = new Database(db, { readonly: true });
    const rows = d.prepare('SELECT r.path, r.csv_path, r.state, r.frame_count, t.number FROM recordings r JOIN trials t ON t.id = r.trial_id ORDER BY r.id').all() as Array<{ path: string; csv_path: string; state: string; frame_count: number; number: number }>;
    d.close();
    assert.deepEqual(
      rows.map((r) => [r.number, r.state]),
      [
        [1, 'complete'],
        [2, 'complete'],
      ],
    );
    for (const r of rows) assert.equal(ffprobeCount(path.join(root, r.path)), r.frame_count, r.path);
  });
});

describe('rigcam module: apply_config refuses what the camera does not offer, and changes nothing', () => {
  // The C922 (its recorded v4l2-ctl listings, and the ffmpeg stand-in for its V4L2 input).
  const dev = path.join(dir, 'dev', 'video0');
  mkdirSync(path.dirname(dev), { recursive: true });
  mkdirSync(path.join(dir, 'fixtures'));
  writeFileSync(dev, '');
  symlinkSync(path.join(repoRoot, 'hw-fixtures/v4l2/logitech-c922'), path.join(dir, 'fixtures', 'video0'));
  const standinLog = path.join(dir, 'standins.log');
  const env = {
    ...process.env,
    PATH: `${path.join(repoRoot, 'test/standins/v4l2-camera')}:${path.join(repoRoot, 'test/standins')}:${process.env.PATH ?? ''}`,
    RIGCAM_FIXTURE_DIR: path.join(dir, 'fixtures'),
    RIGCAM_STANDIN_LOG: standinLog,
  };
  const m = new Module(cfg, ['--output-dir', root, '--instance-id', 'EDGES:2'], env);
  after(() => m.child.kill('SIGKILL'));

  it('an unoffered mode, an unknown control and an out-of-range value are each a command_nack naming why; the mode and controls stay', async () => {
    await m.next('ready', 0);
    let from = m.mark();
    m.send({ command: 'assign_device', command_id: 'a:1', device_id: 'usb:usb1-1.2', camera_type: 'usb', camera_stable_id: 'usb1-1.2', camera_dev_path: dev });
    const ready = await m.next('device_ready', from, (l) => l.command_id === 'a:1');
    const mode = ready.data.resolution;
    for (const [payload, why] of [
      [{ record_resolution: '1234x567', record_fps: 30 }, /does not offer 1234x567@30/],
      [{ record_resolution: { width: 640, height: 480 }, record_fps: '15', controls: { brightnesss: 10 } }, /no control "brightnesss"/],
      [{ controls: { brightness: 999 } }, /brightness/],
    ] as const) {
      from = m.mark();
      m.send({ command: 'apply_config', command_id: 'c:x', ...payload });
      const nack = await m.next('command_nack', from, (l) => l.command_id === 'c:x');
      assert.match(String(nack.data.message), why);
      assert.ok(!m.statuses(from).includes('config_applied') && !m.statuses(from).includes('error'), m.statuses(from).join());
    }
    from = m.mark();
    m.send({ command: 'get_status', command_id: 'g' });
    const rep = await m.next('status_report', from);
    const cam = (rep.data.cameras as Array<Record<string, unknown>>)[0]!;
    assert.equal(cam.resolution, mode, 'mode unchanged');
    assert.equal(typeof cam.queue_depth, 'number');
    assert.doesNotMatch(readFileSync(standinLog, 'utf8'), /--set-ctrl/, 'no control was set');
    m.send({ command: 'quit' });
    assert.equal(await m.exit, 0);
  });
});

describe('rigcam module: a host-assigned camera takes the YAML camera that matches it', () => {
  it('the YAML entry for the same node (a link to it) gives the mode: 640x480 @ 15, not the probed default', async () => {
    const dev = path.join(dir, 'dev', 'video0'); // made by the suite above
    const link = path.join(dir, 'dev', 'usb-Logitech_C922-video-index0');
    symlinkSync(dev, link);
    const cfg2 = path.join(dir, 'rigcam-yaml-cameras.yaml');
    writeFileSync(cfg2, `data_dir: ${dir}\nrecordings_dir: ${root}\ncameras:\n  - id: c922\n    source: v4l2\n    device: ${link}\n    width: 640\n    height: 480\n    fps: 15\n`);
    const env = {
      ...process.env,
      PATH: `${path.join(repoRoot, 'test/standins/v4l2-camera')}:${path.join(repoRoot, 'test/standins')}:${process.env.PATH ?? ''}`,
      RIGCAM_FIXTURE_DIR: path.join(dir, 'fixtures'),
    };
    const m = new Module(cfg2, ['--output-dir', root, '--instance-id', 'EDGES:3'], env);
    try {
      await m.next('ready', 0);
      const from = m.mark();
      m.send({ command: 'assign_device', command_id: 'a:1', device_id: 'usb:usb1-1.2', camera_type: 'usb', camera_stable_id: 'usb1-1.2', camera_dev_path: dev });
      const ready = await m.next('device_ready', from, (l) => l.command_id === 'a:1');
      assert.equal(ready.data.resolution, '640x480');
      assert.equal(ready.data.fps, 15);
      m.send({ command: 'quit' });
      assert.equal(await m.exit, 0);
    } finally {
      m.child.kill('SIGKILL');
    }
  });
});

describe('rigcam module: strict payloads and bounded lines (#16)', () => {
  const m = new Module(cfg, ['--output-dir', root, '--instance-id', 'STRICT:1', '--log-level', 'warning']);
  const session = path.join(root, 'session_20260106_100000');
  after(() => m.child.kill('SIGKILL'));

  it('an over-long line is refused once as it passes the limit (never buffered whole), and the module goes on', async () => {
    await m.next('ready', 0);
    let from = m.mark();
    m.child.stdin.write(JSON.stringify({ command: 'mark', label: 'x'.repeat(1_000_000) }) + '\n');
    m.send({ command: 'get_status', command_id: 'g:1' });
    await m.next('status_report', from, (l) => l.command_id === 'g:1');
    let errs = m.lines.slice(from).filter((l) => l.status === 'error');
    assert.equal(errs.length, 1, m.statuses(from).join());
    assert.match(String(errs[0]!.data.message), /line too long/);

    // 10 MB without a line end, in pieces, then the end: one refusal, and the next line is read as a line.
    from = m.mark();
    const piece = 'y'.repeat(1024 * 1024);
    m.child.stdin.write('{"command": "mark", "label": "');
    for (let i = 0; i < 10; i++) m.child.stdin.write(piece);
    m.child.stdin.write('"}\n');
    m.send({ command: 'get_status', command_id: 'g:2' });
    await m.next('status_report', from, (l) => l.command_id === 'g:2', 30_000);
    errs = m.lines.slice(from).filter((l) => l.status === 'error');
    assert.equal(errs.length, 1, m.statuses(from).join());
    assert.match(String(errs[0]!.data.message), /line too long/);
  });

  it('a misspelt key is a command_nack naming it and changes nothing; the host’s own keys are all taken', async () => {
    let from = m.mark();
    m.send({ command: 'assign_device', command_id: 't:1', device_id: 'test:0', device_type: 'Test', port: '', baudrate: 0, is_wireless: false, is_network: false, is_camera: true, camera_type: 'test', camera_stable_id: 'test0', display_name: 'Pattern' });
    await m.next('device_ready', from, (l) => l.command_id === 't:1');

    from = m.mark();
    m.send({ command: 'record', command_id: 'r:1', session_dir: session, trial_number: 1, trial_lable: 'baseline' });
    const nack = await m.next('command_nack', from, (l) => l.command_id === 'r:1');
    assert.equal(nack.data.code, 'invalid_payload');
    assert.equal(nack.data.field, 'trial_lable');
    assert.match(String(nack.data.message), /unknown key "trial_lable"/);
    m.send({ command: 'start_session', command_id: 's:1', sesion_dir: session });
    const nack2 = await m.next('command_nack', from, (l) => l.command_id === 's:1');
    assert.equal(nack2.data.field, 'sesion_dir');
    // An unassign of a device this module never took: refused, never "the only camera".
    m.send({ command: 'unassign_device', command_id: 'u:1', device_id: 'usb:usb9-9' });
    const nack3 = await m.next('command_nack', from, (l) => l.command_id === 'u:1');
    assert.equal(nack3.data.code, 'not_found');
    m.send({ command: 'get_status', command_id: 'g:3' });
    const rep = await m.next('status_report', from, (l) => l.command_id === 'g:3');
    assert.equal(rep.data.recording, false, 'nothing started');
    assert.equal((rep.data.cameras as unknown[]).length, 1, 'the camera is still assigned');
    assert.ok(!m.statuses(from).includes('recording_started') && !m.statuses(from).includes('error') && !m.statuses(from).includes('device_unassigned'), m.statuses(from).join());

    // The host's own shapes (command_protocol.py: start_session, record with every field, pause, stop_session) pass.
    from = m.mark();
    m.send({ command: 'start_session', session_dir: session });
    m.send({ command: 'record', session_dir: session, trial_number: 1, trial_label: 'baseline' });
    await m.next('recording_started', from);
    await sleep(800);
    m.send({ command: 'mark', command_id: 'm:1', label: 'reward', lable: 'reward' });
    assert.equal((await m.next('command_nack', from, (l) => l.command_id === 'm:1')).data.field, 'lable');
    m.send({ command: 'pause' });
    await m.next('recording_stopped', from);
    m.send({ command: 'stop_session' });
    await m.next('session_stopped', from);
    assert.ok(!m.statuses(from).includes('error'), m.statuses(from).join());
    m.send({ command: 'unassign_device', command_id: 'u:2', device_id: 'test:0' });
    await m.next('device_unassigned', from, (l) => l.command_id === 'u:2');
    m.send({ command: 'quit' });
    assert.equal(await m.exit, 0, m.stderr.slice(-2000));
  });
});
