import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { rigcamBin } from '../helpers/cli.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { ffprobeCount, sleep } from './runtime-helpers.ts';

interface Line {
  type: string;
  status: string;
  timestamp: number;
  data: Record<string, unknown>;
  command_id: string | null;
}

/** Plays the host logger's side: sends flat JSON commands, reads status lines. */
class Host {
  readonly lines: Line[] = [];
  private waiters: Array<() => void> = [];
  constructor(readonly child: ChildProcessWithoutNullStreams) {
    createInterface({ input: child.stdout }).on('line', (l) => {
      this.lines.push(JSON.parse(l) as Line);
      for (const w of this.waiters.splice(0)) w();
    });
  }
  send(cmd: Record<string, unknown>): void {
    this.child.stdin.write(JSON.stringify({ timestamp: Date.now() / 1000, ...cmd }) + '\n');
  }
  async next(status: string, pred: (l: Line) => boolean = () => true, timeoutMs = 20_000, from = 0): Promise<Line> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.lines.slice(from).find((l) => l.status === status && pred(l));
      if (hit) return hit;
      if (Date.now() > deadline) throw new Error(`no ${status}; got ${this.lines.map((l) => l.status).join(',')}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 200);
      });
    }
  }
}

describe('rigcam module: a host logger drives a whole session over stdio', () => {
  const dir = tmpDir();
  const root = path.join(dir, 'data');
  const cfg = path.join(dir, 'rigcam.yaml');
  writeFileSync(cfg, `data_dir: ${dir}\nrecordings_dir: ${root}\ncameras: []\n`);
  let host: Host;
  let exit: Promise<number | null>;
  let stderr = '';

  before(() => {
    const child = spawn(process.execPath, [rigcamBin, 'module', '--config', cfg], { stdio: ['pipe', 'pipe', 'pipe'] });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    exit = new Promise((r) => child.on('close', r));
    host = new Host(child);
  });
  after(() => host.child.kill('SIGKILL'));

  it('says ready, acks assign_device at once, then device_ready echoing the command_id', async () => {
    await host.next('ready');
    const from = host.lines.length;
    host.send({ command: 'assign_device', command_id: 'a1', camera_stable_id: 'test:0', camera_dev_path: '', camera_backend: 'test', camera_name: 'Test cam' });
    const ack = await host.next('device_ack', (l) => l.command_id === 'a1', 20_000, from);
    const ready = await host.next('device_ready', (l) => l.command_id === 'a1', 20_000, from);
    assert.ok(host.lines.indexOf(ack) < host.lines.indexOf(ready), 'ack comes before device_ready');
    assert.equal(ready.data.camera_id, 'test-0');
    assert.equal(ready.data.name, 'Test cam');
    assert.equal(ready.type, 'status');
    assert.equal(typeof ready.timestamp, 'number');
  });

  it('a device that does not exist: device_error with the command_id and data.message', async () => {
    const from = host.lines.length;
    host.send({ command: 'assign_device', command_id: 'a2', camera_stable_id: 'usb-cam-9', camera_dev_path: '/dev/video-missing-9' });
    await host.next('device_ack', (l) => l.command_id === 'a2', 5000, from);
    const err = await host.next('device_error', (l) => l.command_id === 'a2', 20_000, from);
    assert.match(String(err.data.message), /does not exist/);
  });

  it('records a trial into the session directory the host names', async () => {
    const sessionDir = path.join(root, 'session_20260106_081726');
    let from = host.lines.length;
    host.send({ command: 'start_session', command_id: 's1', session_dir: sessionDir, subject: 'mouse3' });
    await host.next('session_started', () => true, 5000, from);
    from = host.lines.length;
    host.send({ command: 'start_recording', command_id: 'r1', session_dir: sessionDir, trial_number: 1, trial_label: 'T1' });
    const started = await host.next('recording_started', () => true, 5000, from);
    assert.equal(started.data.trial, 1);
    await sleep(1500);
    from = host.lines.length;
    host.send({ command: 'stop_recording', command_id: 'r2' });
    const stopped = await host.next('recording_stopped', () => true, 10_000, from);
    const rec = (stopped.data.recordings as Array<{ path: string; frames: number }>)[0]!;
    assert.equal(rec.path, 'session_20260106_081726/session_20260106_081726_trial001_test-0.ts');
    assert.equal(ffprobeCount(path.join(root, rec.path)), rec.frames);
  });

  it('a bad line or unknown command gets an error with data.message, and the module goes on', async () => {
    const from = host.lines.length;
    host.child.stdin.write('this is not json\n');
    host.send({ command: 'frobnicate', command_id: 'x1' });
    await host.next('error', (l) => /not a JSON line/.test(String(l.data.message)), 5000, from);
    const e = await host.next('error', (l) => l.command_id === 'x1', 5000, from);
    assert.match(String(e.data.message), /unknown command/);
  });

  it('get_status → status_report; unassign_all_devices → device_unassigned; quit → quitting and exit 0', async () => {
    let from = host.lines.length;
    host.send({ command: 'get_status', command_id: 'g1' });
    const rep = await host.next('status_report', (l) => l.command_id === 'g1', 5000, from);
    assert.equal(rep.data.recording, false);
    from = host.lines.length;
    host.send({ command: 'unassign_all_devices', command_id: 'u1' });
    const un = await host.next('device_unassigned', (l) => l.command_id === 'u1', 10_000, from);
    assert.deepEqual(un.data, { device_id: 'test-0', port_released: true });
    host.send({ command: 'quit', command_id: 'q1' });
    await host.next('quitting', (l) => l.command_id === 'q1', 10_000, from);
    assert.equal(await exit, 0, stderr);
    const db = new Database(path.join(dir, 'rigcam.db'), { readonly: true });
    const cmds = db.prepare("SELECT COUNT(*) n FROM events WHERE kind = 'command' AND source = 'module'").get() as { n: number };
    db.close();
    assert.ok(cmds.n >= 6, `module commands journalled: ${cmds.n}`);
  });
});
