import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { it } from 'node:test';
import { tmpDir } from '../helpers/tmp.ts';
import { ensureImage, logTiming, repo, RigVm, runScript, sleep } from './vm.ts';

/**
 * rigcam on the virtual rig: built as an offline release, installed by the project's Ansible role
 * over SSH, run by the project's systemd unit; and the checks every scenario ends with.
 */

export const TOKEN = 'rig-token-0123456789abcdef0123';
export const FPS = 15;
export const PERIOD_US = 1_000_000 / FPS;
export const DB = '/var/lib/rigcam/rigcam.db';
/** Recording paths in the database are relative to this root. */
export const RECORDINGS = '/var/lib/rigcam/recordings';
/**
 * How late the guest may stamp a GPIO edge after the write to gpio-sim's pull returned: rigcam asks for raw edges,
 * stamped in their interrupt (irq_sim's irq_work), so µs on a quiet machine, more when TCG's vCPUs are starved by a
 * loaded host. The lower bound (never before the edge) is exact; this one only tells the kernel's stamp from a stamp
 * taken when rigcam saw the edge (tens of ms later still, after debounce).
 */
export const KERNEL_LATENCY_US = 100_000;
/** BCM lines on the gpio-sim header (see scripts/rig/guest/rig-devices.sh). */
export const LINE = { start: 17, stop: 27, marker: 22, recordingOut: 18, sync: 23 } as const;
const SIM = '/sys/devices/platform/gpio-sim.0/gpiochip0';

/** scripts/release-offline.sh: the release with node_modules for this machine, so the guest needs no registry. */
export async function buildOfflineRelease(outDir: string): Promise<string> {
  const t0 = Date.now();
  const res = await runScript('bash', [path.join(repo, 'scripts/release-offline.sh')], {
    cwd: repo,
    env: { ...process.env, RIGCAM_RELEASE_DIR: outDir },
    timeoutMs: 15 * 60_000,
  });
  if (res.status !== 0) throw new Error(`scripts/release-offline.sh failed:\n${res.stdout}\n${res.stderr}`);
  logTiming('offline release', Date.now() - t0);
  return res.stdout.trim().split('\n').pop()!;
}

/**
 * The same release under another version (and, with `broken`, one whose `serve` exits at once while
 * `config check` still works, so it fails only when the role restarts the service).
 */
export function variantRelease(tarball: string, outDir: string, version: string, opts: { broken?: boolean } = {}): string {
  const work = path.join(outDir, `variant-${version}`);
  mkdirSync(work, { recursive: true });
  const run = (cmd: string, args: string[]) => {
    const r = spawnSync(cmd, args, { cwd: work, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  };
  run('tar', ['-xzf', tarball]);
  const [top] = readdirNames(work);
  const dir = path.join(work, top);
  const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version: string };
  pkg.version = version;
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify(pkg, null, 2) + '\n');
  if (opts.broken) {
    const bin = path.join(dir, 'bin/rigcam.js');
    const text = readFileSync(bin, 'utf8').replace(/^(#!.*\n)/, `$1if (process.argv[2] === 'serve') { console.error('rig: deliberately broken release'); process.exit(1); }\n`);
    writeFileSync(bin, text);
  }
  const out = path.join(outDir, `rigcam-${version}.tar.gz`);
  run('tar', ['-czf', out, top]);
  return out;
}

function readdirNames(dir: string): string[] {
  const r = spawnSync('ls', [dir], { encoding: 'utf8' });
  return r.stdout.split('\n').filter(Boolean);
}

export interface PlayResult {
  status: number | null;
  output: string;
}

/** The box's inventory: what a lab would write for this rig (camera, header lines, serial cable, token). */
function inventory(vm: RigVm): unknown {
  return {
    all: {
      children: {
        rigcam: {
          hosts: {
            rigbox: {
              ansible_host: '127.0.0.1',
              ansible_port: vm.sshPort,
              ansible_user: 'root',
              ansible_become: false,
              ansible_ssh_private_key_file: vm.image.key,
              ansible_ssh_common_args: `-o UserKnownHostsFile=${vm.knownHosts} -o StrictHostKeyChecking=yes`,
              ansible_python_interpreter: '/usr/bin/python3',
              // The offline release carries its node_modules: no npm on the box, no registry.
              rigcam_npm_ci: false,
              rigcam_validate_config: true,
              rigcam_packages: ['ffmpeg', 'v4l-utils', 'gpiod', 'nodejs', 'python3'],
              rigcam_http_token: TOKEN,
              // brightness: a control from the config, applied and read back at every source start (issue 22).
              rigcam_cameras: [{ id: 'cam0', source: 'v4l2', device: '/dev/video0', input_format: 'yuyv422', width: 320, height: 180, fps: FPS, encoder: 'libx264', gop_seconds: 1, bitrate_kbps: 300, controls: { brightness: 200 } }],
              rigcam_gpio_config: {
                backend: 'gpiod',
                chip: 'gpiochip0',
                inputs: [
                  { line: LINE.start, mode: 'start_stop', stop_line: LINE.stop, min_pulse_ms: 150 },
                  { line: LINE.marker, mode: 'marker', label: 'gpio-marker' },
                  // Issue 18: a sync line's edges, stored with the kernel's stamps (no debounce).
                  { line: LINE.sync, mode: 'sync' },
                ],
                outputs: { recording: { line: LINE.recordingOut } },
              },
              rigcam_serial_config: { enabled: true, path: '/dev/ttyS1', baud: 115200 },
              // A power cut may lose the stop hold (here 150 + 5 + 250 ms) plus one fsync interval and a frame: with
              // 500 ms a run lost 0.977 s, at the edge of the 1 s the power-cut scenario allows; 250 ms leaves room
              // (the default 1000 ms would not fit at all).
              rigcam_extra_config: { log: { level: 'info' }, recording: { fsync_interval_ms: 250 } },
              rigcam_health_retries: 60,
              rigcam_health_delay: 2,
            },
          },
        },
      },
    },
  };
}

/** Runs the project's playbook (ansible/site.yml) against the guest. */
export function playbook(vm: RigVm, tarball: string, extra: Record<string, unknown> = {}): PlayResult {
  const dir = path.join(vm.work, 'ansible');
  mkdirSync(dir, { recursive: true });
  const inv = path.join(dir, 'inventory.json');
  writeFileSync(inv, JSON.stringify(inventory(vm)));
  const t0 = Date.now();
  const res = spawnSync('ansible-playbook', ['-i', inv, 'site.yml', '-e', JSON.stringify({ rigcam_release_tarball: tarball, ...extra })], {
    cwd: path.join(repo, 'ansible'),
    encoding: 'utf8',
    timeout: 15 * 60_000,
    env: {
      ...process.env,
      ANSIBLE_CONFIG: path.join(repo, 'ansible/ansible.cfg'),
      ANSIBLE_LOCAL_TEMP: path.join(dir, 'tmp'),
      ANSIBLE_SSH_CONTROL_PATH_DIR: path.join(dir, 'cp'),
      ANSIBLE_NOCOLOR: '1',
      ANSIBLE_FORCE_COLOR: '0',
    },
  });
  const output = res.stdout + res.stderr;
  logTiming(`ansible-playbook ${path.basename(tarball)}`, Date.now() - t0, `exit ${res.status}`);
  return { status: res.status, output };
}

export function stopAnsibleMasters(vm: RigVm): void {
  spawnSync('sh', ['-c', `for s in ${path.join(vm.work, 'ansible/cp')}/*; do [ -S "$s" ] && ssh -o ControlPath="$s" -O exit 127.0.0.1; done`], { stdio: 'ignore' });
}

/** HTTP to the box through the port forward (the token the role configured). */
export async function api<T = Record<string, unknown>>(vm: RigVm, method: string, route: string, body?: unknown, opts: { token?: string | null } = {}): Promise<{ status: number; json: T }> {
  const token = opts.token === undefined ? TOKEN : opts.token;
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`http://127.0.0.1:${vm.httpPort}${route}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  return { status: res.status, json: (text ? JSON.parse(text) : {}) as T };
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs: number, everyMs = 500): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(everyMs);
  }
}

export async function recordingNow(vm: RigVm): Promise<boolean> {
  const r = await api<{ recording: boolean }>(vm, 'GET', '/api/status');
  assert.equal(r.status, 200, JSON.stringify(r.json));
  return r.json.recording;
}

export async function cameraState(vm: RigVm): Promise<string> {
  const r = await api<{ state: string }>(vm, 'GET', '/api/cameras/cam0');
  return r.json.state;
}

/** Waits until systemd has rigcam active and its camera delivers video. */
export async function waitBoxReady(vm: RigVm, timeoutMs = Number(process.env.RIG_READY_TIMEOUT_S ?? 600) * 1000): Promise<void> {
  const t0 = Date.now();
  await waitFor('rigcam active', async () => (await vm.ssh('systemctl is-active rigcam')).stdout.trim() === 'active', timeoutMs, 1000);
  await waitFor('camera cam0 ready', async () => (await cameraState(vm)) === 'ready', timeoutMs, 1000);
  logTiming('rigcam ready', Date.now() - t0);
}

/** CLOCK_MONOTONIC of the guest, µs. */
const MONO = 'import time\ndef mono(): return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000\n';

export interface Edge {
  /** Guest monotonic µs just before and just after the write that made the edge. */
  before: number;
  after: number;
}

/** Drives a gpio-sim input line like a TTL pulse from lab equipment: up for `ms`, then down. */
export async function pulse(vm: RigVm, line: number, ms: number): Promise<{ rise: Edge; fall: Edge }> {
  const py = `${MONO}p='${SIM}/sim_gpio${line}/pull'
def put(v):
    a = mono()
    with open(p, 'w') as f: f.write(v)
    return [a, mono()]
r = put('pull-up'); time.sleep(${ms / 1000}); f = put('pull-down'); print(r[0], r[1], f[0], f[1])`;
  const out = (await vm.run(`python3 -c "$(cat)"`, { input: py })).trim().split(/\s+/).map(Number);
  return { rise: { before: out[0], after: out[1] }, fall: { before: out[2], after: out[3] } };
}

/**
 * Drives a pulse train on a gpio-sim input from inside the guest, each pulse up for `highMs`, onsets `intervalsMs`
 * apart (a script in the guest, so the intervals are not stretched by SSH round trips). Returns every edge's
 * bracket of guest monotonic µs, in order (rise, fall, rise, ...).
 */
export async function pulseTrain(vm: RigVm, line: number, intervalsMs: number[], highMs: number): Promise<Edge[]> {
  const py = `${MONO}p='${SIM}/sim_gpio${line}/pull'
def put(v):
    a = mono()
    with open(p, 'w') as f: f.write(v)
    return (a, mono())
out = []
t0 = time.monotonic()
for i, gap in enumerate([0] + ${JSON.stringify(intervalsMs)}):
    t0 += gap / 1000
    time.sleep(max(0, t0 - time.monotonic()))
    out.append(put('pull-up'))
    time.sleep(${highMs / 1000})
    out.append(put('pull-down'))
print(' '.join('%d %d' % e for e in out))`;
  const n = (await vm.run(`python3 -c "$(cat)"`, { input: py, timeoutMs: 120_000 })).trim().split(/\s+/).map(Number);
  const edges: Edge[] = [];
  for (let i = 0; i + 1 < n.length; i += 2) edges.push({ before: n[i], after: n[i + 1] });
  return edges;
}

export async function gpioValue(vm: RigVm, line: number): Promise<number> {
  return Number((await vm.run(`cat ${SIM}/sim_gpio${line}/value`)).trim());
}

export async function guestMonoUs(vm: RigVm): Promise<number> {
  return Number((await vm.run(`python3 -c "$(cat)"`, { input: `${MONO}print(mono())` })).trim());
}

/** A read-only query of the box's database, as JSON rows. */
export async function sql<T = Record<string, unknown>>(vm: RigVm, query: string): Promise<T[]> {
  const out = await vm.run(`sqlite3 -readonly -json ${DB}`, { input: query });
  return (out.trim() ? JSON.parse(out) : []) as T[];
}

export interface RecordingRow {
  id: number;
  trial_id: number;
  path: string;
  csv_path: string;
  state: string;
  stop_reason: string | null;
  frame_count: number;
  dropped: number;
  trigger_source: string | null;
  trigger_mono_us: number | null;
  trigger_frame_index: number | null;
  fps_nominal: number;
}

export interface FrameRow {
  frame_index: number;
  capture_us: number;
  interval_us: number | null;
  missing_before: number;
  keyframe: number;
  flags: string;
}

export interface Checked {
  rec: RecordingRow;
  frames: FrameRow[];
  fileFrames: number;
  csvRows: string[][];
}

/** The latest recording (optionally of a session), from the box's database. */
export async function latestRecording(vm: RigVm, session?: string): Promise<RecordingRow> {
  const where = session ? `WHERE t.session_id = (SELECT id FROM sessions WHERE name = '${session.replace(/'/g, "''")}')` : '';
  const [rec] = await sql<RecordingRow>(vm, `SELECT r.* FROM recordings r JOIN trials t ON t.id = r.trial_id ${where} ORDER BY r.id DESC LIMIT 1;`);
  assert.ok(rec, `no recording${session ? ` in session ${session}` : ''}`);
  return rec;
}

/**
 * The invariant every scenario ends with: the frames in the file (ffprobe, on the box) = the rows
 * in the database = the rows in the CSV, frame by frame (index, capture time), and the
 * recording's own counters agree.
 */
export async function checkRecording(vm: RigVm, id: number): Promise<Checked> {
  const [rec] = await sql<RecordingRow>(vm, `SELECT * FROM recordings WHERE id = ${id};`);
  assert.ok(rec, `recording ${id} is not in the database`);
  const frames = await sql<FrameRow>(vm, `SELECT frame_index, capture_us, interval_us, missing_before, keyframe, flags FROM frames WHERE recording_id = ${id} ORDER BY frame_index;`);
  const abs = (p: string) => (p.startsWith('/') ? p : `${RECORDINGS}/${p}`);
  // MPEG-TS: ffprobe prints the stream under its program too; the first line is the stream's count.
  const probed = await vm.run(`ffprobe -v error -select_streams v:0 -count_packets -show_entries stream=nb_read_packets -of csv=p=0 '${abs(rec.path)}'`);
  const probedFrames = Number(probed.trim().split('\n')[0]);
  // A power cut mid-write leaves the file ending inside a TS packet (rigcam writes whole packets only): that last
  // frame is torn, its bytes are kept but it is never counted (README "Crash"); ffprobe still counts its packet.
  const size = Number((await vm.run(`stat -c %s '${abs(rec.path)}'`)).trim());
  const torn = size % 188 !== 0;
  const fileFrames = probedFrames - (torn ? 1 : 0);
  const csvText = await vm.run(`cat '${abs(rec.csv_path)}'`);
  const [header, ...lines] = csvText.split('\n').filter((l) => l.length > 0);
  const cols = header.split(',');
  const csvRows = lines.map((l) => l.split(','));
  const at = (name: string) => {
    const i = cols.indexOf(name);
    assert.ok(i >= 0, `CSV has no column ${name}: ${header}`);
    return i;
  };
  const ctx = `recording ${id} (${rec.path}, ${rec.state})`;
  assert.ok(fileFrames > 0, `${ctx}: no frames in the file`);
  if (torn) {
    assert.equal(rec.state, 'interrupted', `${ctx}: a file with a torn last frame (${size} bytes) is only ever an interrupted recording`);
    process.stderr.write(`rig: ${ctx}: torn last frame (${size % 188} bytes of its last TS packet), not counted\n`);
  }
  assert.equal(frames.length, fileFrames, `${ctx}: database rows ${frames.length} != file frames ${fileFrames}`);
  assert.equal(csvRows.length, fileFrames, `${ctx}: CSV rows ${csvRows.length} != file frames ${fileFrames}`);
  assert.equal(rec.frame_count, fileFrames, `${ctx}: frame_count ${rec.frame_count} != file frames ${fileFrames}`);
  const iIdx = at('frame_index');
  const iCap = at('capture_us');
  frames.forEach((f, k) => {
    assert.equal(f.frame_index, k + 1, `${ctx}: frame rows are numbered 1..n`);
    assert.equal(Number(csvRows[k][iIdx]), f.frame_index, `${ctx}: CSV row ${k + 1} frame_index`);
    assert.equal(Number(csvRows[k][iCap]), f.capture_us, `${ctx}: CSV row ${k + 1} capture_us differs from the database`);
    if (k > 0) assert.ok(f.capture_us > frames[k - 1].capture_us, `${ctx}: capture times must increase (frame ${k + 1})`);
  });
  return { rec, frames, fileFrames, csvRows };
}

/**
 * The timing of a trial: its trigger frame is the first frame captured at or after the trigger
 * (within one frame period plus the capture jitter, one more per frame dropped just before it),
 * frames before it are pre-roll, and frames arrive at the configured rate with gaps accounted for
 * by missing_before.
 */
export function checkTiming(c: Checked, ctx: string): void {
  const { rec, frames } = c;
  assert.ok(rec.trigger_mono_us !== null && rec.trigger_frame_index !== null, `${ctx}: trigger not recorded`);
  const trig = frames[rec.trigger_frame_index - 1];
  assert.ok(trig, `${ctx}: trigger frame ${rec.trigger_frame_index} not in the file`);
  assert.ok(trig.capture_us >= rec.trigger_mono_us, `${ctx}: trigger frame captured ${rec.trigger_mono_us - trig.capture_us} µs before the trigger`);
  // Within a period plus the capture jitter, and one more period for each frame the kernel dropped right
  // before it (with percentage_of_dropped_buffers the first frame after the trigger can be one of them).
  const allowed = PERIOD_US * (1.5 + trig.missing_before);
  assert.ok(
    trig.capture_us - rec.trigger_mono_us <= allowed,
    `${ctx}: trigger frame ${trig.capture_us - rec.trigger_mono_us} µs after the trigger (> ${(allowed / PERIOD_US).toFixed(1)} periods; missing_before ${trig.missing_before})`,
  );
  if (rec.trigger_frame_index > 1) {
    const prev = frames[rec.trigger_frame_index - 2];
    assert.ok(prev.capture_us < rec.trigger_mono_us, `${ctx}: the frame before the trigger frame is not before the trigger`);
    assert.match(prev.flags, /preroll/, `${ctx}: frames before the trigger are flagged preroll`);
  }
  // Each interval is a whole number of periods (at least one): 1 + missing_before.
  for (let k = 1; k < frames.length; k++) {
    const dt = frames[k].capture_us - frames[k - 1].capture_us;
    const periods = Math.max(1, Math.round(dt / PERIOD_US));
    assert.equal(periods, 1 + frames[k].missing_before, `${ctx}: frame ${k + 1} comes ${dt} µs after the previous one but missing_before is ${frames[k].missing_before}`);
  }
  // The camera runs at the configured rate: the mean period over the trial (vivid's single intervals follow
  // the kernel's jiffies, e.g. 64 and 68 ms at HZ=250) is one frame period.
  const periods = frames.length - 1 + frames.slice(1).reduce((sum, f) => sum + f.missing_before, 0);
  const mean = (frames[frames.length - 1].capture_us - frames[0].capture_us) / periods;
  // 2 %, plus the jitter of the two end frames' stamps (up to half a period each under TCG) spread over the trial.
  const tolerance = PERIOD_US * 0.02 + PERIOD_US / periods;
  assert.ok(Math.abs(mean - PERIOD_US) < tolerance, `${ctx}: mean frame period ${mean.toFixed(0)} µs over ${periods} periods, expected ${PERIOD_US.toFixed(0)} ± ${tolerance.toFixed(0)}`);
  const missing = frames.reduce((s, f) => s + f.missing_before, 0);
  assert.equal(rec.dropped, missing, `${ctx}: dropped ${rec.dropped} != Σ missing_before ${missing}`);
}

export interface Box {
  vm: RigVm;
  /** The offline release tarball installed first. */
  release: string;
  /** This run's temp folder (releases, the VM's overlay and sockets). */
  work: string;
}

/**
 * The scenarios' shared set-up: the image (built or from the cache), the offline release, one VM booted
 * on an overlay with its devices checked, rigcam installed by the Ansible role and ready. With RIG_ATTACH,
 * the VM test/rig/shell.ts keeps running is used as it is.
 */
export async function setUpBox(): Promise<Box> {
  const work = tmpDir('rigcam-rig-');
  // Both run to their end (a failed one reported, not left running under the next step).
  const [built, released] = await Promise.allSettled([ensureImage(), buildOfflineRelease(path.join(work, 'release'))]);
  if (built.status === 'rejected') throw built.reason;
  if (released.status === 'rejected') throw released.reason;
  const [image, release] = [built.value, released.value];
  const attached = RigVm.attached(image);
  if (attached) return { vm: attached, release, work };
  const vm = new RigVm(image, path.join(work, 'vm'));
  try {
    await vm.boot();
    // The devices exist before rigcam is installed: the camera and the header chip, owned by group gpio.
    const dev = await vm.run('v4l2-ctl -d /dev/video0 --info | grep -i "driver name"; stat -c %G /dev/gpiochip0; gpioinfo -c gpiochip0 | grep -c GPIO');
    assert.match(dev, /vivid/);
    assert.match(dev, /^gpio$/m);
    const install = playbook(vm, release);
    assert.equal(install.status, 0, install.output);
    await waitBoxReady(vm);
    // TCG on a shared host runs Node many times slower than a Pi: a restart (after the watchdog, a power cut)
    // took more than the unit's 90 s to reach READY=1 at load 15 and systemd killed it. The rig's box gets
    // more time to start; its watchdog (what the scenarios test) is left as the project's unit sets it.
    await vm.run('mkdir -p /etc/systemd/system/rigcam.service.d && printf "[Service]\\nTimeoutStartSec=600\\n" >/etc/systemd/system/rigcam.service.d/rig-slow-cpu.conf && systemctl daemon-reload');
  } catch (err) {
    process.stderr.write(`\n${await vm.diagnostics().catch((e: Error) => `(no diagnostics: ${e.message})`)}\n`);
    await vm.destroy();
    throw err;
  }
  return { vm, release, work };
}

export async function tearDownBox(box: Box | undefined): Promise<void> {
  if (!box) return;
  stopAnsibleMasters(box.vm);
  await box.vm.destroy();
}

/**
 * One rig scenario as a test: timed, and when it fails the guest's journal (every boot: a scenario may
 * have rebooted it) and console are printed with the error.
 */
export function scenario(name: string, box: () => Box, fn: (b: Box) => Promise<void>, timeoutMs = 600_000): void {
  it(name, { timeout: timeoutMs }, async () => {
    const t0 = Date.now();
    const b = box();
    try {
      await fn(b);
    } catch (err) {
      process.stderr.write(`\n${await b.vm.diagnostics(true).catch((e: Error) => `(no diagnostics: ${e.message})`)}\n`);
      // A trial a failed scenario left running would make the next scenario's start a no-op and its checks
      // read this trial: stop it, so one failure is reported once.
      await api(b.vm, 'POST', '/api/trials/stop', {}).catch(() => undefined);
      throw err;
    } finally {
      logTiming(`scenario "${name}"`, Date.now() - t0);
    }
  });
}
