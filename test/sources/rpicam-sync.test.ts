import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { parseSyncAchievedLine, rpicamSourceSpec, rpicamVidArgs, type RpicamSourceOptions } from '../../src/sources/rpicam-source.ts';
import { readSidecar } from '../../src/storage/sidecar.ts';
import { repoRoot } from '../helpers/cli.ts';
import { startHttpBox, type HttpBox } from '../helpers/box.ts';
import { sleep } from '../helpers/wait-status.ts';
import { tmpDir } from '../helpers/tmp.ts';

const dir = tmpDir('rigcam-csi-sync-');
const standinLog = path.join(dir, 'standins.log');
const serverFile = path.join(dir, 'server-is-up');
mkdirSync(path.join(dir, 'locks'));
writeFileSync(standinLog, '');
process.env.PATH = `${path.join(repoRoot, 'test/standins')}${path.delimiter}${process.env.PATH ?? ''}`;
process.env.RIGCAM_RPICAM_FIXTURE = path.join(repoRoot, 'hw-fixtures/rpicam/pi4-imx708-wide/list-cameras.txt');
process.env.RIGCAM_STANDIN_LOG = standinLog;
process.env.RIGCAM_RPICAM_LOCK_DIR = path.join(dir, 'locks');
process.env.RIGCAM_RPICAM_SYNC_SERVER_FILE = serverFile;
process.env.RIGCAM_RPICAM_SYNC_DIFFERENCE_US = '-37';
delete process.env.RIGCAM_RPICAM_VERSION;

const base: RpicamSourceOptions = { camera: 0, width: 320, height: 240, fps: 15, gopSeconds: 1, bitrateKbps: 500, encoder: 'libx264' };

/** Runs the stand-in for `ms`, then SIGINT; stderr lines and when the first stdout byte came, relative to them. */
function runFor(args: string[], ms: number, env: NodeJS.ProcessEnv = process.env): Promise<{ lines: string[]; firstStdoutAfterLine: number | null; bytes: number }> {
  return new Promise((resolve) => {
    const child = spawn(path.join(repoRoot, 'test/standins/rpicam-vid'), args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: string[] = [];
    let partial = '';
    let firstStdoutAfterLine: number | null = null;
    let bytes = 0;
    child.stderr.on('data', (b: Buffer) => {
      const parts = (partial + b.toString()).split('\n');
      partial = parts.pop()!;
      lines.push(...parts);
    });
    child.stdout.on('data', (b: Buffer) => {
      firstStdoutAfterLine ??= lines.length;
      bytes += b.length;
    });
    setTimeout(() => child.kill('SIGINT'), ms);
    child.on('close', () => resolve({ lines, firstStdoutAfterLine, bytes }));
  });
}

describe('rpicam-vid --sync: what it prints, as read', () => {
  it('reads libcamera\'s "Sync achieved" line (server and client) and nothing else', () => {
    assert.equal(parseSyncAchievedLine('[0:11:05.123456789] [3107]  INFO RPiSync sync.cpp:232 *** Sync achieved! Difference 12us'), 12);
    assert.equal(parseSyncAchievedLine('[0:11:05.123456789] [3107]  INFO RPiSync sync.cpp:281 *** Sync achieved! Difference -4051us'), -4051);
    assert.equal(parseSyncAchievedLine('Viewfinder frame 0'), null);
    assert.equal(parseSyncAchievedLine('[0:11:05.1] [3107]  INFO Camera camera.cpp:1 *** Sync achieved! Difference 12us'), null, 'another category');
    assert.equal(parseSyncAchievedLine('*** Sync achieved! Difference us'), null);
  });

  it('a sync source passes --sync and may stay silent on stdout as long as the sync takes', () => {
    const s = rpicamSourceSpec({ ...base, sync: 'server' });
    assert.deepEqual(s.args.slice(s.args.indexOf('--sync'), s.args.indexOf('--sync') + 2), ['--sync', 'server']);
    assert.equal(s.firstOutputMs, null);
    assert.equal(rpicamSourceSpec(base).firstOutputMs, undefined, 'others keep the pipeline default');
  });

  it('stand-in server: frames run unencoded until the ready frame, then the sync line, then the stream', async () => {
    const r = await runFor(rpicamVidArgs({ ...base, sync: 'server' }), 5000, { ...process.env, RIGCAM_RPICAM_SYNC_READY_FRAME: '8' });
    const syncAt = r.lines.findIndex((l) => parseSyncAchievedLine(l) !== null);
    assert.ok(syncAt > 0, r.lines.join('\n'));
    assert.equal(parseSyncAchievedLine(r.lines[syncAt]!), -37);
    assert.equal(r.lines.slice(0, syncAt).filter((l) => l === 'Viewfinder frame 0').length, 8, 'one "Viewfinder frame 0" per frame while waiting');
    assert.ok(r.firstStdoutAfterLine !== null && r.firstStdoutAfterLine > syncAt, `nothing on stdout before the sync (first at line ${r.firstStdoutAfterLine}, sync at ${syncAt}): ${r.lines.join('\n')}`);
    assert.ok(r.bytes > 0);
    assert.ok(r.lines.some((l) => /^Video start timestamp : \d+ us$/.test(l)));
  });

  it('stand-in: an unknown --sync value is refused with rpicam-apps\' words', async () => {
    const r = await runFor([...rpicamVidArgs(base), '--sync', 'master'], 2000);
    assert.ok(r.lines.includes('ERROR: *** incorrect sync value master ***'), r.lines.join('\n'));
  });
});

describe('a CSI sync client in a box', () => {
  let t: HttpBox | null = null;
  after(async () => {
    await t?.close();
  });

  it('waits for the server, refuses trials with the reason meanwhile, records the sync state with the recording', async () => {
    t = await startHttpBox({ extra: { cameras: [{ id: 'csi0', source: 'rpicam', device: 0, width: 320, height: 240, fps: 15, gop_seconds: 0.5, sync: 'client' }] } });
    const cam = t.box.cameras.get('csi0')!;
    assert.equal(cam.state, 'ready', 'assigned while rpicam-vid waits');
    assert.equal(cam.sync?.state, 'waiting');
    assert.match(readFileSync(standinLog, 'utf8'), /^rpicam-vid .*--sync client --output -$/m);

    const status = (await (await t.api('/api/status')).json()) as { cameras: Array<{ camera_id: string; sync?: { mode: string; state: string } }> };
    assert.deepEqual(
      status.cameras.map((c) => [c.camera_id, c.sync?.mode, c.sync?.state]),
      [['csi0', 'client', 'waiting']],
    );

    const api = { source: 'api' as const };
    const refused = await t.box.handleCommand('start_recording', {}, api);
    assert.equal(refused.ok, false);
    assert.equal(refused.code, 'busy');
    assert.match(refused.error ?? '', /camera csi0 is waiting for rpicam-vid --sync \(client\): no sync yet with a server camera/);
    assert.equal(t.store.listRecordings().length, 0, 'nothing recorded while out of step');

    writeFileSync(serverFile, ''); // the server box's camera is up
    const deadline = Date.now() + 10_000;
    while (!cam.canRecord && Date.now() < deadline) await sleep(50);
    assert.equal(cam.notReadyReason(), null);
    assert.equal(cam.sync?.state, 'achieved');
    assert.equal(cam.sync?.difference_us, -37);

    const start = await t.box.handleCommand('start_recording', {}, api);
    assert.equal(start.ok, true, start.error);
    await sleep(1200);
    const stop = await t.box.handleCommand('stop_recording', {}, api);
    assert.equal(stop.ok, true, stop.error);

    const [listed] = t.store.listRecordings();
    const rec = listed ? t.store.recording(listed.id) : undefined;
    assert.ok(rec && rec.frame_count > 0, 'frames recorded');
    const view = (await (await t.api(`/api/recordings/${rec.id}`)).json()) as { recording: { camera_sync: Record<string, unknown> | null } };
    assert.equal(view.recording.camera_sync?.mode, 'client');
    assert.equal(view.recording.camera_sync?.state, 'achieved');
    assert.equal(view.recording.camera_sync?.difference_us, -37);
    assert.equal(typeof view.recording.camera_sync?.achieved_mono_us, 'number');
    const sidecar = readSidecar(path.join(t.root, rec.path))!;
    assert.deepEqual(sidecar.camera.sync, view.recording.camera_sync);
  });
});
