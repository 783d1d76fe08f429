// Acceptance test of issue 15: `rigcam module` driven the way RPi_Logger's host drives a camera module, with
// the host's own message shapes (hw-fixtures/rpi-logger, see its SOURCE.md) — ISO-string timestamps, flat fields,
// `record`/`pause`, one module process per camera started with the host's launch flags — and the host's reading
// of the answers (hw-fixtures/rpi-logger/statuses.json). docs/rpi-logger-host.md lists the gaps it was written for.
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { repoRoot, rigcamBin } from '../helpers/cli.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { ffprobeCount, sleep } from './runtime-helpers.ts';

const FIX = path.join(repoRoot, 'hw-fixtures/rpi-logger');
const dir = tmpDir('rigcam-rpilogger-');
const root = path.join(dir, 'data');
const dev = path.join(dir, 'dev', 'video0');
const sessionDir = path.join(root, 'session_20260106_081740');
const cfg = path.join(dir, 'rigcam.yaml');
const standinLog = path.join(dir, 'standins.log');

// A USB camera (the C922's recorded v4l2-ctl listings + a stand-in ffmpeg for its V4L2 input, the file `dev`
// standing for its node) and a Pi 4 with a Camera Module 3 Wide (the rpicam-vid / rpicam-hello stand-ins).
mkdirSync(path.dirname(dev), { recursive: true });
mkdirSync(path.join(dir, 'fixtures'));
writeFileSync(dev, '');
symlinkSync(path.join(repoRoot, 'hw-fixtures/v4l2/logitech-c922'), path.join(dir, 'fixtures', 'video0'));
writeFileSync(cfg, `data_dir: ${dir}\nrecordings_dir: ${root}\ncameras: []\ntelemetry:\n  emit_interval_ms: 500\n`);
const env: NodeJS.ProcessEnv = {
  ...process.env,
  PATH: `${path.join(repoRoot, 'test/standins/v4l2-camera')}:${path.join(repoRoot, 'test/standins')}:${process.env.PATH ?? ''}`,
  RIGCAM_FIXTURE_DIR: path.join(dir, 'fixtures'),
  RIGCAM_RPICAM_FIXTURE: path.join(repoRoot, 'hw-fixtures/rpicam/pi4-imx708-wide/list-cameras.txt'),
  RIGCAM_STANDIN_LOG: standinLog,
};

const placeholders: Record<string, string> = {
  '{{DEV_PATH}}': dev,
  '{{SESSION_DIR}}': sessionDir,
  '{{OUTPUT_DIR}}': root,
  '{{CONFIG_PATH}}': path.join(dir, 'host-module-config.txt'),
};
function fill(s: string): string {
  let out = s;
  for (const [k, v] of Object.entries(placeholders)) out = out.split(k).join(v);
  return out;
}
/** The fixture's lines, byte for byte as the host writes them (placeholders filled). */
function fixtureLines(name: string): string[] {
  return readFileSync(path.join(FIX, name), 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map(fill);
}
interface Launch {
  usb: string[];
  csi: string[];
  minimal: string[];
  issue_15_extra: { args: string[] };
}
const launch = JSON.parse(readFileSync(path.join(FIX, 'launch.json'), 'utf8')) as Launch;
const launchArgs = (which: 'usb' | 'csi' | 'minimal'): string[] => launch[which].map(fill);

interface Line {
  type: string;
  status: string;
  timestamp: unknown;
  data: Record<string, unknown>;
  command_id?: string | null;
}

/** The host's side of one module process: writes fixture lines, reads status lines as module_process.py does. */
class ModuleUnderHost {
  readonly lines: Line[] = [];
  /** stdout lines that are not status objects: the host drops them silently, so any is a lost message. */
  readonly strays: string[] = [];
  readonly spawnedAt = Date.now();
  readonly exit: Promise<number | null>;
  stderr = '';
  private waiters: Array<() => void> = [];
  readonly child: ChildProcessWithoutNullStreams;
  constructor(args: string[]) {
    // The RPi_Logger shim would run exactly this: rigcam's own config, then the host's argv unchanged.
    this.child = spawn(process.execPath, [rigcamBin, '--config', cfg, 'module', ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stderr.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exit = new Promise((r) => this.child.on('close', r));
    createInterface({ input: this.child.stdout }).on('line', (l) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(l);
      } catch {
        parsed = null;
      }
      const obj = parsed as Partial<Line> | null;
      const dataOk = obj?.data === undefined || (typeof obj.data === 'object' && obj.data !== null && !Array.isArray(obj.data));
      if (obj && typeof obj === 'object' && obj.type === 'status' && typeof obj.status === 'string' && dataOk) {
        this.lines.push({ ...(obj as Line), data: obj.data ?? {} });
      } else this.strays.push(l);
      for (const w of this.waiters.splice(0)) w();
    });
  }
  send(line: string): void {
    this.child.stdin.write(line + '\n');
  }
  mark(): number {
    return this.lines.length;
  }
  async next(status: string, pred: (l: Line) => boolean = () => true, timeoutMs = 20_000, from = 0): Promise<Line> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.lines.slice(from).find((l) => l.status === status && pred(l));
      if (hit) return hit;
      if (Date.now() > deadline)
        throw new Error(`no ${status} within ${timeoutMs} ms; got: ${this.lines.slice(from).map((l) => `${l.status}${l.status === 'error' ? `(${String(l.data.message)})` : ''}`).join(', ')}\nstderr: ${this.stderr.slice(-2000)}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 200);
      });
    }
  }
  /** Statuses after `from` that would put the host's ModuleState into ERROR (module_process.py L310-312). */
  errorsSince(from: number): Line[] {
    return this.lines.slice(from).filter((l) => l.status === 'error');
  }
}

interface RecRow {
  id: number;
  trial_number: number;
  camera_id: string;
  path: string;
  csv_path: string;
  state: string;
  frame_count: number;
  width: number;
  height: number;
  fps_nominal: number;
}
/** The USB module's own database: one per host instance (`--instance-id`), so that the CSI module never touches it. */
const usbDb = path.join(dir, 'modules', 'CAMERAS_usb_usb1-1.2', 'rigcam.db');
function recordings(): RecRow[] {
  const db = new Database(usbDb, { readonly: true });
  try {
    return db
      .prepare(
        'SELECT r.id, t.number AS trial_number, r.camera_id, r.path, r.csv_path, r.state, r.frame_count, r.width, r.height, r.fps_nominal FROM recordings r JOIN trials t ON t.id = r.trial_id ORDER BY r.id',
      )
      .all() as RecRow[];
  } finally {
    db.close();
  }
}
function csvRows(file: string): number {
  return readFileSync(file, 'utf8').split('\n').filter((l) => l.trim()).length - 1;
}
function probeStream(file: string): { width: number; height: number; rate: number } {
  const out = execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=width,height,r_frame_rate', '-of', 'json', file]).toString();
  const s = (JSON.parse(out) as { streams: Array<{ width: number; height: number; r_frame_rate: string }> }).streams[0]!;
  const [n, d] = s.r_frame_rate.split('/').map(Number);
  return { width: s.width, height: s.height, rate: n! / (d ?? 1) };
}
/** What `rigcam probe` says this camera's default record mode is. */
const probed = JSON.parse(execFileSync(process.execPath, [rigcamBin, 'probe', '--from-dump', path.join(repoRoot, 'hw-fixtures/v4l2/logitech-c922'), '--json']).toString()) as {
  default_record: { width: number; height: number; fps: number };
};

/** Checks a recording_stopped the host gets after `pause`: the seed's fields, and that they are the truth. */
function assertStopFields(stopped: Line): void {
  const d = stopped.data;
  assert.equal(typeof d.frames_recorded, 'number', `frames_recorded: ${JSON.stringify(d)}`);
  assert.equal(typeof d.duration_seconds, 'number', 'duration_seconds');
  assert.equal(typeof d.actual_fps, 'number', 'actual_fps');
  assert.ok((d.frames_recorded as number) > 0);
  const expectFps = (d.frames_recorded as number) / (d.duration_seconds as number);
  assert.ok(Math.abs((d.actual_fps as number) - expectFps) < 0.05 * expectFps + 0.5, `actual_fps ${String(d.actual_fps)} vs frames/duration ${expectFps}`);
}

describe('rigcam module under RPi_Logger: the host launches one process per camera and drives it with its own messages', () => {
  let usb: ModuleUnderHost;
  let csi: ModuleUnderHost | undefined;
  const started: Line[] = [];
  const stoppedByPause: Line[] = [];

  before(() => {
    usb = new ModuleUnderHost(launchArgs('usb'));
  });
  after(() => {
    usb.child.kill('SIGKILL');
    csi?.child.kill('SIGKILL');
  });

  it('accepts the host launch flags and says ready within the 10 s the host waits (wait_for_ready)', async () => {
    const ready = await usb.next('ready', () => true, 15_000);
    assert.ok(usb.lines.indexOf(ready) === 0, 'ready is the first status');
    const tookMs = Date.now() - usb.spawnedAt;
    assert.ok(tookMs < 10_000, `ready after ${tookMs} ms`);
  });

  it('USB assign_device as the host sends it (ISO timestamp, flat fields): device_ack, then device_ready carrying data.device_id, the display name and the probed default mode', async () => {
    const from = usb.mark();
    const sentAt = Date.now();
    usb.send(fixtureLines('assign-usb.jsonl')[0]!);
    const ack = await usb.next('device_ack', (l) => l.command_id === 'CAMERAS:usb:usb1-1.2:1', 5000, from);
    assert.equal(ack.data.device_id, 'usb:usb1-1.2');
    // Without data.device_id the host ignores device_ready (logger_system.py L296-305); it gives up after ~11 s.
    const ready = await usb.next('device_ready', (l) => l.command_id === 'CAMERAS:usb:usb1-1.2:1', 11_000, from);
    assert.ok(Date.now() - sentAt < 11_000, 'device_ready before the host runs out of retries');
    assert.equal(ready.data.device_id, 'usb:usb1-1.2');
    assert.equal(ready.data.name, 'USB:C922 Pro Stream Webcam [1-1.2]');
    assert.equal(ready.data.source, 'v4l2');
    assert.equal(ready.data.resolution, `${probed.default_record.width}x${probed.default_record.height}`, 'the probed default record mode, not 1280x720');
    assert.equal(ready.data.fps, probed.default_record.fps);
    assert.deepEqual(usb.errorsSince(from), []);
  });

  it('the host re-sending assign_device (attempt 2) is answered device_ready again, without a restart or an error', async () => {
    const from = usb.mark();
    usb.send(fixtureLines('assign-usb-retry.jsonl')[1]!);
    const ready = await usb.next('device_ready', (l) => l.command_id === 'CAMERAS:usb:usb1-1.2:2', 10_000, from);
    assert.equal(ready.data.device_id, 'usb:usb1-1.2');
    await sleep(500);
    assert.deepEqual(usb.errorsSince(from), []);
    assert.equal(usb.lines.slice(from).filter((l) => l.status === 'device_error' || l.status === 'source_exited').length, 0);
  });

  it('record → pause → record → pause: two complete trials; pause answers recording_stopped (the only status that ends RECORDING for the host)', async () => {
    const [startSession, record1, pause1, record2, pause2, stopSession] = fixtureLines('session-record-pause-record.jsonl');
    const from = usb.mark();
    usb.send(startSession!);
    await usb.next('session_started', () => true, 5000, from);

    let m = usb.mark();
    usb.send(record1!);
    started.push(await usb.next('recording_started', () => true, 5000, m));
    // A CSI module of the same host starts while trial 1 records (the host starts one process per camera, at
    // any time, on the same data): it must not touch the running recording.
    csi = new ModuleUnderHost(launchArgs('csi'));
    await sleep(2000);
    m = usb.mark();
    usb.send(pause1!);
    stoppedByPause.push(await usb.next('recording_stopped', () => true, 10_000, m));

    m = usb.mark();
    usb.send(record2!);
    started.push(await usb.next('recording_started', () => true, 5000, m));
    await sleep(2000);
    m = usb.mark();
    usb.send(pause2!);
    stoppedByPause.push(await usb.next('recording_stopped', () => true, 10_000, m));
    m = usb.mark();
    usb.send(stopSession!);
    await usb.next('session_stopped', () => true, 10_000, m);

    assert.deepEqual(usb.errorsSince(from), [], 'no `error`: it would put the module in ERROR and out of the session');
    for (const s of stoppedByPause) assertStopFields(s);
    const trials = recordings().filter((r) => r.trial_number === 1 || r.trial_number === 2);
    assert.deepEqual(
      trials.map((r) => [r.trial_number, r.state]),
      [
        [1, 'complete'],
        [2, 'complete'],
      ],
    );
  });

  it('recording_started carries the absolute video and timing paths, inside the session directory the host named', () => {
    assert.equal(started.length, 2, 'trials 1 and 2 started');
    for (const s of started) {
      const video = s.data.video_path;
      const timing = s.data.timing_path ?? s.data.csv_path;
      assert.equal(typeof video, 'string', `video_path: ${JSON.stringify(s.data)}`);
      assert.equal(typeof timing, 'string', 'timing (CSV) path');
      for (const p of [video as string, timing as string]) {
        assert.ok(path.isAbsolute(p), p);
        assert.equal(path.dirname(p), sessionDir);
        assert.ok(existsSync(p), p);
      }
      assert.equal(s.data.device_id, 'usb:usb1-1.2');
    }
  });

  it('a CSI camera (picam) is served by rpicam-vid, never the test pattern: self-assigned from --camera-index, and through the host flat assign_device', async () => {
    assert.ok(csi, 'CSI module started');
    const ready0 = await csi.next('ready', () => true, 15_000);
    assert.ok(csi.lines.indexOf(ready0) === 0);
    // HEAD host: launched with --camera-index 0, no assign_device; it waits for device_ready {device_id: picam:0}.
    const auto = await csi.next('device_ready', (l) => l.data.device_id === 'picam:0', 15_000);
    assert.equal(auto.data.source, 'rpicam');
    // Seed-era host: the flat assign_device with camera_type picam and no device path.
    const from = csi.mark();
    csi.send(fixtureLines('assign-csi.jsonl')[0]!);
    await csi.next('device_ack', (l) => l.command_id === 'CAMERAS:picam:0:1', 5000, from);
    const ready = await csi.next('device_ready', (l) => l.command_id === 'CAMERAS:picam:0:1', 11_000, from);
    assert.equal(ready.data.device_id, 'picam:0');
    assert.equal(ready.data.source, 'rpicam');
    assert.equal(ready.data.name, 'RPi:Cam0');
    assert.notEqual(ready.data.source, 'test');
    assert.match(readFileSync(standinLog, 'utf8'), /^rpicam-vid .*--camera 0\b/m, 'rpicam-vid ran for camera 0');
    assert.deepEqual(csi.errorsSince(0), []);
  });

  it('the CSI module starting up did not disturb the USB module’s recording of trial 1', () => {
    const t1 = recordings().find((r) => r.trial_number === 1)!;
    assert.equal(t1.state, 'complete');
    assert.equal(ffprobeCount(path.join(root, t1.path)), t1.frame_count);
  });

  it('apply_config with the seed payload (strings, WxH, controls) really changes the mode: the next trial’s file is 640x480 @ 15', async () => {
    const from = usb.mark();
    usb.send(fixtureLines('apply-config.jsonl')[0]!);
    const applied = await usb.next('config_applied', (l) => l.command_id === 'cfg-1', 20_000, from);
    assert.equal(applied.data.resolution, '640x480');
    assert.equal(applied.data.fps, 15);
    assert.deepEqual(usb.errorsSince(from), []);
    assert.match(readFileSync(standinLog, 'utf8'), /--set-ctrl=brightness=140/, 'controls applied to the camera');
  });

  it('apply_config with an unknown key is refused naming the key, and changes nothing', async () => {
    const from = usb.mark();
    usb.send(fixtureLines('apply-config-unknown-key.jsonl')[0]!);
    const refused = await usb.next('error', (l) => l.command_id === 'cfg-2', 10_000, from).catch(async () => usb.next('command_nack', (l) => l.command_id === 'cfg-2', 1000, from));
    assert.match(String(refused.data.message ?? refused.data.error), /record_fsp/);
    assert.equal(usb.lines.slice(from).filter((l) => l.status === 'config_applied').length, 0);
    const m = usb.mark();
    usb.send(fixtureLines('get-status.jsonl')[0]!);
    const rep = await usb.next('status_report', () => true, 5000, m);
    const cams = rep.data.cameras as Array<Record<string, unknown>>;
    assert.equal(cams[0]!.resolution, '640x480', 'mode unchanged by the refused command');
  });

  it('pause_recording → resume_recording → stop_recording (seed): one trial, one file, paused and resumed', async () => {
    const [record3, pauseRec, resumeRec, stopRec] = fixtureLines('resume.jsonl');
    const from = usb.mark();
    usb.send(record3!);
    const st = await usb.next('recording_started', () => true, 5000, from);
    started.push(st);
    await sleep(1500);
    usb.send(pauseRec!);
    await usb.next('recording_paused', () => true, 5000, from);
    await sleep(1000);
    usb.send(resumeRec!);
    await usb.next('recording_resumed', () => true, 5000, from);
    await sleep(1500);
    usb.send(stopRec!);
    const stopped = await usb.next('recording_stopped', () => true, 10_000, from);
    assertStopFields(stopped);
    assert.deepEqual(usb.errorsSince(from), []);
    const t3 = recordings().filter((r) => r.trial_number === 3);
    assert.equal(t3.length, 1);
    assert.equal(t3[0]!.state, 'complete');
    const t1 = recordings().find((r) => r.trial_number === 1)!;
    const modeBefore = probeStream(path.join(root, t1.path));
    const modeAfter = probeStream(path.join(root, t3[0]!.path));
    assert.deepEqual([modeBefore.width, modeBefore.height], [probed.default_record.width, probed.default_record.height]);
    assert.deepEqual([modeAfter.width, modeAfter.height], [640, 480], 'the file itself is in the applied mode');
    assert.ok(Math.abs(modeAfter.rate - 15) < 0.5, `15 fps in the file, got ${modeAfter.rate}`);
  });

  it('telemetry and status carry queue_depth as a number (the detailed object under another key)', async () => {
    const tele = await usb.next('telemetry', () => true, 5000, usb.mark());
    assert.equal(typeof tele.data.queue_depth, 'number', JSON.stringify(tele.data));
  });

  it('every trial: file frames (ffprobe) = CSV rows = database frame_count = frames_recorded reported to the host', () => {
    const rows = recordings();
    assert.deepEqual(
      rows.map((r) => r.trial_number),
      [1, 2, 3],
    );
    const reported = stoppedByPause.map((s) => s.data.frames_recorded);
    assert.equal(reported.length, 2, 'trials 1 and 2 were stopped by pause');
    rows.forEach((r, i) => {
      const n = ffprobeCount(path.join(root, r.path));
      assert.equal(r.state, 'complete');
      assert.equal(n, r.frame_count, `${r.path}: file vs database`);
      assert.equal(csvRows(path.join(root, r.csv_path)), r.frame_count, `${r.csv_path}: CSV vs database`);
      if (i < reported.length) assert.equal(reported[i], r.frame_count, `trial ${r.trial_number}: reported vs database`);
    });
  });

  it('unassign_all_devices → device_unassigned with the host command_id within 0.9 s; quit → quitting, exit 0 within 2 s; only status lines on stdout', async () => {
    const [unassign, quit] = fixtureLines('shutdown.jsonl');
    for (const m of [usb, csi!]) {
      const from = m.mark();
      const t0 = Date.now();
      m.send(unassign!);
      const un = await m.next('device_unassigned', (l) => l.command_id === 'shutdown-3f9a1c2e', 900, from);
      assert.ok(Date.now() - t0 <= 900);
      assert.equal(un.data.port_released, true);
      assert.ok(un.data.device_id === 'usb:usb1-1.2' || un.data.device_id === 'picam:0', String(un.data.device_id));
      const t1 = Date.now();
      m.send(quit!);
      await m.next('quitting', () => true, 2000, from);
      assert.equal(await m.exit, 0, m.stderr);
      assert.ok(Date.now() - t1 < 2000, 'exited before the host sends SIGTERM');
      assert.deepEqual(m.strays, [], 'the host drops non-status stdout lines');
    }
  });
});

describe('rigcam module: the rest of the host launch flags, and a real camera that cannot be served', () => {
  it('--log-level warning (Python level names) and --mode headless are accepted; a missing CSI camera is device_error naming why, never the test source', async () => {
    const m = new ModuleUnderHost([...launchArgs('minimal').map((a) => (a === 'info' ? 'warning' : a)), ...launch.issue_15_extra.args]);
    try {
      await m.next('ready', () => true, 15_000);
      const from = m.mark();
      const line = fixtureLines('assign-csi.jsonl')[0]!
        .replace('"command_id": "CAMERAS:picam:0:1"', '"command_id": "CAMERAS:picam:1:1"')
        .replace('"device_id": "picam:0"', '"device_id": "picam:1"')
        .replace('"camera_stable_id": "0"', '"camera_stable_id": "1"')
        .replace('"display_name": "RPi:Cam0"', '"display_name": "RPi:Cam1"');
      m.send(line);
      const err = await m.next('device_error', (l) => l.command_id === 'CAMERAS:picam:1:1', 11_000, from);
      assert.equal(err.data.device_id, 'picam:1', 'the host ignores device_error without data.device_id');
      assert.match(String(err.data.error), /camera 1|not available|no camera/i, 'data.error is the text the host shows');
      assert.equal(m.lines.slice(from).filter((l) => l.status === 'device_ready').length, 0, 'never served by the test pattern');
      m.send(fixtureLines('shutdown.jsonl')[1]!);
      await m.next('quitting', () => true, 5000, from);
      assert.equal(await m.exit, 0, m.stderr);
      assert.doesNotMatch(m.stderr, /"level":"info"|"level":30\b/, 'warning level: no info lines');
      assert.deepEqual(m.strays, []);
    } finally {
      m.child.kill('SIGKILL');
    }
  });
});
