// Honest clocks: a camera stamping CLOCK_REALTIME is refused, every recording names its clock, a late start is
// flagged with its gap, `rigcam record` fills its pre-roll, a wall clock stepped between trials is followed. Real ffmpeg, real SQLite, the V4L2 camera stand-in.
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { monoNowUs } from '../../src/clock.ts';
import { runTool } from '../../src/cameras/run-tool.ts';
import { chronyOffsetUs, readTimeSync, type ToolRunner } from '../../src/runtime/time-sync.ts';
import { ToolShell } from '../../src/supervise/tool-shell.ts';
import { parseTimingCsv } from '../../src/timing/csv-format.ts';
import { repoRoot, runCli } from '../helpers/cli.ts';
import { faketimeEnv, libfaketimeMissing } from '../helpers/faketime.ts';
import { skipUnlessCi } from '../helpers/requires.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { sleep, startTestBox } from '../runtime/runtime-helpers.ts';

test('a V4L2 camera stamping CLOCK_REALTIME is refused with a clear device_error; nothing is recorded', async (t) => {
  const dir = tmpDir();
  const dev = path.join(dir, 'dev', 'video0');
  mkdirSync(path.dirname(dev));
  mkdirSync(path.join(dir, 'fixtures'));
  symlinkSync(path.join(repoRoot, 'hw-fixtures/v4l2/logitech-c922'), path.join(dir, 'fixtures', 'video0'));
  writeFileSync(dev, '');
  const saved = { PATH: process.env.PATH, RIGCAM_FIXTURE_DIR: process.env.RIGCAM_FIXTURE_DIR, V4L2_STANDIN_CLOCK: process.env.V4L2_STANDIN_CLOCK };
  process.env.PATH = `${path.join(repoRoot, 'test/standins/v4l2-camera')}:${path.join(repoRoot, 'test/standins')}:${process.env.PATH}`;
  process.env.RIGCAM_FIXTURE_DIR = path.join(dir, 'fixtures');
  process.env.V4L2_STANDIN_CLOCK = 'realtime';
  const box = await startTestBox({
    cameras: 0,
    extra: {
      cameras: [{ id: 'usb', source: 'v4l2', device: dev, input_format: 'mjpeg', width: 640, height: 480, fps: 30 }],
      supervisor: { restart_initial_ms: 200, restart_max_ms: 500, healthy_after_ms: 5000 },
    },
  });
  t.after(async () => {
    await box.close();
    for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  });
  const err = box.statuses.find((s) => s.status === 'device_error' && s.data.camera_id === 'usb');
  assert.ok(err, `device_error expected; statuses: ${JSON.stringify(box.statuses.map((s) => s.status))}`);
  assert.match(String(err.data.message), /capture clock refused/);
  assert.match(String(err.data.message), /CLOCK_REALTIME/);
  assert.match(String(err.data.message), /h (before|after) it arrived/, 'the gap is hours');
  assert.notEqual(box.box.cameras.get('usb')!.state, 'ready');
  const start = await box.box.handleCommand('start_recording', { session_prefix: 'rt' }, { source: 'api' });
  assert.equal(start.ok, false, 'no trial on a refused camera');
  const n = box.db.prepare('SELECT COUNT(*) AS n FROM recordings').get() as { n: number };
  assert.equal(n.n, 0);
});

test('a trigger while the camera restarts: the late start is flagged with its gap; the clock is named', async (t) => {
  const box = await startTestBox({ cameras: 1, extra: { supervisor: { restart_initial_ms: 300, restart_max_ms: 500, healthy_after_ms: 5000 } } });
  t.after(() => box.close());
  const rt = box.box.cameras.get('cam0')!;
  const pid = rt.stats()!.sourcePid!;
  process.kill(pid, 'SIGKILL');
  for (let i = 0; i < 100 && rt.stats()!.running; i++) await sleep(20);
  const trigger = monoNowUs();
  const start = await box.box.handleCommand('start_recording', { session_prefix: 'late' }, { source: 'api', triggerMonoUs: trigger });
  assert.equal(start.ok, true, start.error);
  await sleep(3000);
  const stop = await box.box.handleCommand('stop_recording', {}, { source: 'api' });
  assert.equal(stop.ok, true, stop.error);
  const rec = (stop.data!.recordings as Array<{ recording_id: number; late_start_us: number | null; clock_source: string; preroll_s: number }>)[0]!;
  assert.equal(rec.clock_source, 'synthetic');
  assert.ok(rec.late_start_us !== null && rec.late_start_us > 200_000, `late_start_us ${rec.late_start_us}`);
  const row = box.db.prepare('SELECT late_start_us, clock_source, preroll_s, csv_path FROM recordings WHERE id = ?').get(rec.recording_id) as { late_start_us: number; clock_source: string; preroll_s: number; csv_path: string };
  assert.equal(row.late_start_us, rec.late_start_us);
  assert.equal(row.clock_source, 'synthetic');
  assert.equal(row.preroll_s, 0);
  const first = box.db.prepare('SELECT capture_us, flags FROM frames WHERE recording_id = ? ORDER BY frame_index LIMIT 1').get(rec.recording_id) as { capture_us: number; flags: string };
  assert.match(first.flags, /late_start/);
  assert.equal(first.capture_us - trigger, rec.late_start_us);
  const csv = parseTimingCsv(readFileSync(path.join(box.root, row.csv_path), 'utf8'));
  assert.match(csv[0]!.flags, /late_start/);
  assert.ok(!csv.slice(1).some((r) => /late_start/.test(r.flags)), 'only the first row is flagged');

  // On time: a trial started on a running camera is not flagged.
  const again = await box.box.handleCommand('start_recording', { session_prefix: 'late' }, { source: 'api' });
  assert.equal(again.ok, true, again.error);
  await sleep(1000);
  const stop2 = await box.box.handleCommand('stop_recording', {}, { source: 'api' });
  assert.equal((stop2.data!.recordings as Array<{ late_start_us: number | null }>)[0]!.late_start_us, null);
});

test('rigcam record with preroll_seconds: 2 waits for and reports at least 2 s before the trigger', async () => {
  const dir = tmpDir();
  const cfg = path.join(dir, 'rigcam.yaml');
  writeFileSync(cfg, 'recording:\n  preroll_seconds: 2\n');
  const r = await runCli(['--config', cfg, 'record', '--source', 'test', '--duration', '1', '--session', 'pre', '--size', '320x240', '--fps', '15', '--data', dir], { timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { recording_id: number; csv: string; preroll_s: number; clock_source: string; trigger_frame_index: number; db: string };
  assert.equal(out.clock_source, 'synthetic');
  assert.ok(out.preroll_s >= 2, `preroll_s ${out.preroll_s}`);
  const rows = parseTimingCsv(readFileSync(out.csv, 'utf8'));
  const triggerRow = rows[out.trigger_frame_index - 1]!;
  assert.ok(triggerRow.captureUs - rows[0]!.captureUs >= 2e6 - 1e6 / 15, `video before the trigger: ${(triggerRow.captureUs - rows[0]!.captureUs) / 1e6} s`);
  assert.equal(rows.filter((x) => /preroll/.test(x.flags)).length, out.trigger_frame_index - 1);
  assert.ok(existsSync(out.db));
  assert.ok(readdirSync(path.dirname(out.csv)).length >= 2);
});

test('two cameras of one trial share one wall↔mono pair, stored on the trial with its trigger clock and time sync', async (t) => {
  // A chronyc stand-in first on the PATH the box's tools see; it notes its parent and grandparent.
  const bin = tmpDir();
  const who = path.join(bin, 'who.log');
  writeFileSync(
    path.join(bin, 'chronyc'),
    `#!/bin/sh\necho "$PPID $(cut -d' ' -f4 /proc/$PPID/stat)" >> ${JSON.stringify(who)}\nprintf "System time     : 0.000004000 seconds fast of NTP time\\nLeap status     : Normal\\n"\n`,
    { mode: 0o755 },
  );
  const oldPath = process.env.PATH;
  process.env.PATH = `${bin}:${oldPath}`;
  t.after(() => (process.env.PATH = oldPath));
  const box = await startTestBox({ cameras: 2 });
  t.after(() => box.close());
  const start = await box.box.handleCommand('start_recording', { session_prefix: 'pair' }, { source: 'serial' });
  assert.equal(start.ok, true, start.error);
  await sleep(800);
  const stop = await box.box.handleCommand('stop_recording', {}, { source: 'api' });
  assert.equal(stop.ok, true, stop.error);
  const trialId = start.data!.trial_id as number;
  const recs = box.db.prepare('SELECT mono0_us, wall0_us FROM recordings WHERE trial_id = ? ORDER BY id').all(trialId) as Array<{ mono0_us: number; wall0_us: number }>;
  assert.equal(recs.length, 2);
  assert.deepEqual(recs[0], recs[1]);
  let trial = box.db.prepare('SELECT mono0_us, wall0_us, pair_uncertainty_us, time_sync, trigger_clock FROM trials WHERE id = ?').get(trialId) as {
    mono0_us: number; wall0_us: number; pair_uncertainty_us: number; time_sync: string | null; trigger_clock: string;
  };
  for (let i = 0; i < 50 && trial.time_sync === null; i++) {
    await sleep(100);
    trial = box.db.prepare('SELECT mono0_us, wall0_us, pair_uncertainty_us, time_sync, trigger_clock FROM trials WHERE id = ?').get(trialId) as typeof trial;
  }
  assert.deepEqual({ mono0_us: trial.mono0_us, wall0_us: trial.wall0_us }, recs[0]);
  assert.ok(trial.pair_uncertainty_us >= 0 && trial.pair_uncertainty_us < 1000, `uncertainty ${trial.pair_uncertainty_us} µs`);
  assert.equal(trial.trigger_clock, 'serial-arrival');
  assert.deepEqual(JSON.parse(trial.time_sync!), { synchronized: true, offset_us: 4, tool: 'chronyc' });
  // Read without forking the box's process (a fork of it held the event loop 5–13 ms, issue 17): chronyc's parent
  // is the box's tool shell, or `timeout` under it, never this process.
  const [parent, grandparent] = readFileSync(who, 'utf8').trim().split('\n')[0]!.split(' ').map(Number);
  assert.notEqual(parent, process.pid);
  assert.ok(parent !== undefined && grandparent !== undefined);
  const shellPid = readFileSync(`/proc/${grandparent}/comm`, 'utf8').trim() === 'sh' ? grandparent : parent;
  assert.equal(Number(readFileSync(`/proc/${shellPid}/stat`, 'utf8').split(' ')[3]), process.pid, 'the tool shell is a child of the box process');
  // The CSV's wall times are the trial pair's: wall = wall0 + (capture − mono0), to the µs.
  const rec = box.db.prepare('SELECT id FROM recordings WHERE trial_id = ? ORDER BY id LIMIT 1').get(trialId) as { id: number };
  const f = box.db.prepare('SELECT capture_us, wall_us FROM frames WHERE recording_id = ? LIMIT 1').get(rec.id) as { capture_us: number; wall_us: number };
  assert.equal(f.wall_us, trial.wall0_us + (f.capture_us - trial.mono0_us));
});

test('the wall clock stepped between two trials: the second trial, its recording rows, sidecar and frames follow the step', { skip: skipUnlessCi(libfaketimeMissing) }, () => {
  // The box runs in a child whose CLOCK_REALTIME libfaketime steps (CLOCK_MONOTONIC runs on), as `date -s` would.
  // A start reuses the last precise wall↔mono offset unless Date.now() shows a step (clock.ts startPair): a start
  // that missed the step would give the second trial wall times 3 s off, with nothing else to show for it.
  const dir = tmpDir();
  const steps = path.join(dir, 'faketime');
  const script = path.join(dir, 'step.mts');
  writeFileSync(
    script,
    `import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
delete process.env.LD_PRELOAD; // the camera's ffmpeg keeps the real clock: the box's own reads are the subject
import { startTestBox, sleep } from ${JSON.stringify(path.join(repoRoot, 'test/runtime/runtime-helpers.ts'))};
const t = await startTestBox({ cameras: 1 });
const trial = async (): Promise<number> => {
  const r = await t.box.handleCommand('start_recording', { session: 'stepped' }, { source: 'api' });
  if (!r.ok) throw new Error(r.error);
  await sleep(600);
  const s = await t.box.handleCommand('stop_recording', {}, { source: 'api' });
  if (!s.ok) throw new Error(s.error);
  return r.data.trial_id;
};
const first = await trial();
await sleep(300); // the box has re-measured its offset after the stop
writeFileSync(${JSON.stringify(steps)}, '+3\\n');
const second = await trial();
const out = [];
for (const id of [first, second]) {
  const tr = t.db.prepare('SELECT mono0_us, wall0_us, pair_uncertainty_us FROM trials WHERE id = ?').get(id);
  const rec = t.db.prepare('SELECT id, path, mono0_us, wall0_us FROM recordings WHERE trial_id = ?').get(id);
  const frame = t.db.prepare('SELECT capture_us, wall_us FROM frames WHERE recording_id = ? ORDER BY capture_us LIMIT 1').get(rec.id);
  const sidecar = JSON.parse(readFileSync(path.join(t.root, rec.path.replace(/\\.ts$/, '.json')), 'utf8'));
  out.push({ offset: tr.wall0_us - tr.mono0_us, uncertainty: tr.pair_uncertainty_us, recording: rec.wall0_us - rec.mono0_us, sidecar: sidecar.recording.wall0_us - sidecar.recording.mono0_us, frame: frame.wall_us - frame.capture_us });
}
await t.close();
console.log(JSON.stringify(out));
process.exit(0);
`,
  );
  const r = spawnSync(process.execPath, ['--import', 'tsx', script], { cwd: repoRoot, env: faketimeEnv(steps), encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr.slice(-3000));
  const [a, b] = JSON.parse(r.stdout.trim().split('\n').pop()!) as Array<{ offset: number; uncertainty: number; recording: number; sidecar: number; frame: number }>;
  for (const x of [a!, b!]) assert.deepEqual([x.recording, x.sidecar, x.frame], [x.offset, x.offset, x.offset], 'one pair per trial, everywhere');
  const moved = b!.offset - a!.offset;
  assert.ok(Math.abs(moved - 3_000_000) <= a!.uncertainty + b!.uncertainty + 2, `the second trial's offset moved ${moved} µs, the clock 3 s`);
});

test('time sync: chronyc offset read, timedatectl next, absent tools → unknown (through the ToolShell and through execFile)', async (t) => {
  const shellFor = (bin: string): ToolRunner => {
    const sh = new ToolShell({ env: { PATH: bin }, timeoutMs: 2000 });
    t.after(() => sh.close());
    return (c, a) => sh.run(c, a);
  };
  const execIn = (bin: string): ToolRunner => (c, a) => runTool(c, a, { env: { PATH: bin } });
  const empty = tmpDir();
  for (const run of [shellFor(empty), execIn(empty)]) assert.deepEqual(await readTimeSync(run), { synchronized: 'unknown', offset_us: null, tool: null });
  const bin = tmpDir();
  writeFileSync(
    path.join(bin, 'chronyc'),
    '#!/bin/sh\nprintf "Reference ID    : A29FC87B (time.cloudflare.com)\\nSystem time     : 0.000012345 seconds slow of NTP time\\nLeap status     : Normal\\n"\n',
    { mode: 0o755 },
  );
  for (const run of [shellFor(bin), execIn(bin)]) assert.deepEqual(await readTimeSync(run), { synchronized: true, offset_us: -12.345, tool: 'chronyc' });
  // chronyc present but chronyd not running (exit 1): timedatectl answers.
  const td = tmpDir();
  writeFileSync(path.join(td, 'chronyc'), '#!/bin/sh\necho "506 Cannot talk to daemon" >&2\nexit 1\n', { mode: 0o755 });
  writeFileSync(path.join(td, 'timedatectl'), '#!/bin/sh\n[ "$*" = "show -p NTPSynchronized" ] || exit 2\necho NTPSynchronized=no\n', { mode: 0o755 });
  for (const run of [shellFor(td), execIn(td)]) assert.deepEqual(await readTimeSync(run), { synchronized: false, offset_us: null, tool: 'timedatectl' });
  assert.equal(chronyOffsetUs('System time     : 0.000400000 seconds fast of NTP time'), 400);
});
