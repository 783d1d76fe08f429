import { existsSync } from 'node:fs';
import { readFile, statfs } from 'node:fs/promises';
import path from 'node:path';
import { discoverCameras, type DiscoveryResult } from '../cameras/discovery.ts';
import { findHardwareEncoderDevice, parseFfmpegEncoders } from '../cameras/encoder-choice.ts';
import { runTool, type ToolResult } from '../cameras/run-tool.ts';
import { parseRpicamVersion, rpicamVersionProblem } from '../sources/rpicam-source.ts';
import { parseGpiodVersion } from '../triggers/gpio/gpiod-version.ts';
import { replaceFile } from '../storage/durable-file.ts';
import { CHECKPOINT_TOOL } from '../storage/wal-checkpoint.ts';
import { mkdirSync } from 'node:fs';

/**
 * `rigcam doctor`: what this box has and lacks for rigcam, one line per check, each failure with the command
 * that fixes it. It only reads (tools' --version, listings, statfs): safe to run while the service records. A
 * missing tool is a finding, never a crash.
 */

export type DoctorLevel = 'OK' | 'WARN' | 'FAIL';

export interface DoctorCheck {
  level: DoctorLevel;
  check: string;
  detail: string;
  /** Command or action that fixes a WARN or FAIL. */
  fix?: string;
}

export interface DoctorOptions {
  /** Environment of the tools run (PATH decides which are found). */
  env?: NodeJS.ProcessEnv;
  /** Where /sys, /dev and /proc are looked up (tests build a fake tree). */
  rootDir?: string;
  /** The data directory whose volume must have room for recordings. */
  dataDir?: string;
}

export interface DoctorReport {
  lines: string[];
  ok: boolean;
  checks: DoctorCheck[];
}

const TOOL_TIMEOUT_MS = 10_000;
const GiB = 1024 ** 3;
/** Below this a recording cannot start safely; below WARN_FREE it soon will not. */
const FAIL_FREE = 1 * GiB;
const WARN_FREE = 5 * GiB;
const GROUPS = ['video', 'gpio', 'dialout'] as const;
const GROUP_USE: Record<(typeof GROUPS)[number], string> = { video: 'cameras and the encoder', gpio: 'GPIO triggers', dialout: 'serial triggers' };

export function formatCheck(c: DoctorCheck): string {
  const head = c.level === 'OK' ? 'OK  ' : `${c.level} `;
  return `${head}${c.check}: ${c.detail}${c.level !== 'OK' && c.fix ? ` — fix: ${c.fix}` : ''}`;
}

const ok = (check: string, detail: string): DoctorCheck => ({ level: 'OK', check, detail });
const warn = (check: string, detail: string, fix: string): DoctorCheck => ({ level: 'WARN', check, detail, fix });
const fail = (check: string, detail: string, fix: string): DoctorCheck => ({ level: 'FAIL', check, detail, fix });

function firstLine(text: string): string {
  return text.split('\n').find((l) => l.trim())?.trim() ?? '';
}

/** What a tool that ran and failed said, in one line. */
function saidWhat(r: ToolResult): string {
  return firstLine(r.stderr) || firstLine(r.stdout) || `exit ${r.exitCode}`;
}

type Board = { model: string | null; kind: 'pi5' | 'pi-with-encoder' | 'other-pi' | 'not-pi' };

async function readBoard(rootDir: string): Promise<Board> {
  let model: string | null = null;
  try {
    model = (await readFile(path.join(rootDir, 'proc/device-tree/model'), 'utf8')).replace(/\0/g, '').trim() || null;
  } catch {
    model = null;
  }
  if (!model || !/Raspberry Pi/i.test(model)) return { model, kind: 'not-pi' };
  if (/Raspberry Pi 5|Compute Module 5|Raspberry Pi 500/i.test(model)) return { model, kind: 'pi5' };
  // The models with the VideoCore H.264 encoder (bcm2835-codec).
  if (/Raspberry Pi (4|400|3|2|Zero 2)|Compute Module (4|3)/i.test(model)) return { model, kind: 'pi-with-encoder' };
  return { model, kind: 'other-pi' };
}

function boardCheck(b: Board): DoctorCheck {
  if (b.kind === 'not-pi') return warn('board', b.model ? `${b.model}: not a Raspberry Pi` : 'unknown (no /proc/device-tree/model): not a Raspberry Pi', 'run rigcam on the Raspberry Pi of the rig');
  return ok('board', b.model ?? '');
}

async function ffmpegChecks(env: NodeJS.ProcessEnv, rootDir: string, board: Board): Promise<DoctorCheck[]> {
  const checks: DoctorCheck[] = [];
  const version = await runTool('ffmpeg', ['-hide_banner', '-version'], { env, timeoutMs: TOOL_TIMEOUT_MS });
  const probe = await runTool('ffprobe', ['-hide_banner', '-version'], { env, timeoutMs: TOOL_TIMEOUT_MS });
  const fixFfmpeg = 'sudo apt install ffmpeg';
  if (!version.found) checks.push(fail('ffmpeg', 'not installed (not found on PATH): no camera can be recorded', fixFfmpeg));
  else if (version.exitCode !== 0) checks.push(fail('ffmpeg', `does not run: ${saidWhat(version)}`, fixFfmpeg));
  else checks.push(ok('ffmpeg', firstLine(version.stdout).replace(/^ffmpeg version (\S+).*/, 'ffmpeg $1')));
  if (!probe.found) checks.push(fail('ffprobe', 'not installed (not found on PATH): recordings cannot be verified', fixFfmpeg));
  else if (probe.exitCode !== 0) checks.push(fail('ffprobe', `does not run: ${saidWhat(probe)}`, fixFfmpeg));
  else checks.push(ok('ffprobe', firstLine(probe.stdout).replace(/^ffprobe version (\S+).*/, 'ffprobe $1')));

  const device = await findHardwareEncoderDevice(rootDir);
  const runs = version.found && version.exitCode === 0;
  let encoders: string[] = [];
  if (runs) {
    const r = await runTool('ffmpeg', ['-hide_banner', '-encoders'], { env, timeoutMs: TOOL_TIMEOUT_MS });
    if (r.found && r.exitCode === 0) encoders = parseFfmpegEncoders(r.stdout);
  }
  const x264 = encoders.includes('libx264');
  const m2m = encoders.includes('h264_v4l2m2m');
  const have = `libx264 ${x264 ? 'yes' : 'no'}, h264_v4l2m2m ${m2m ? 'yes' : 'no'}`;
  if (!runs) checks.push(fail('H.264 encoders', 'unknown: ffmpeg does not run', fixFfmpeg));
  else if (!x264 && !(m2m && device)) checks.push(fail('H.264 encoders', `${have}: nothing can encode USB MJPEG/YUYV cameras`, `${fixFfmpeg} (Debian's and Raspberry Pi OS's builds include libx264)`));
  else if (!x264) checks.push(warn('H.264 encoders', `${have}: no software fallback`, `${fixFfmpeg} (a build with libx264)`));
  else checks.push(ok('H.264 encoders', have));

  if (device && m2m) checks.push(ok('hardware encoder', `${device} (bcm2835-codec-encode), used through h264_v4l2m2m`));
  else if (device && !runs) checks.push(warn('hardware encoder', `${device} exists, but without ffmpeg nothing uses it`, fixFfmpeg));
  else if (device) checks.push(warn('hardware encoder', `${device} exists but this ffmpeg has no h264_v4l2m2m: encoding falls back to libx264`, "sudo apt install ffmpeg (Raspberry Pi OS's build)"));
  else if (board.kind === 'pi5') checks.push(ok('hardware encoder', 'none: a Pi 5 has no H.264 encoder, libx264 encodes in software'));
  else if (board.kind === 'pi-with-encoder')
    checks.push(warn('hardware encoder', 'no bcm2835-codec-encode node: encoding falls back to libx264 (more CPU)', 'sudo modprobe bcm2835_codec, and remove it from any /etc/modprobe.d blacklist'));
  else checks.push(ok('hardware encoder', 'none on this board: libx264 encodes in software'));
  return checks;
}

async function versionLine(tool: string, env: NodeJS.ProcessEnv): Promise<ToolResult> {
  return runTool(tool, ['--version'], { env, timeoutMs: TOOL_TIMEOUT_MS });
}

async function v4l2Check(env: NodeJS.ProcessEnv): Promise<DoctorCheck> {
  const r = await versionLine('v4l2-ctl', env);
  const fix = 'sudo apt install v4l-utils';
  if (!r.found) return fail('v4l2-ctl', 'not installed: USB cameras cannot be told from the Pi’s codec and ISP nodes', fix);
  if (r.exitCode !== 0) return fail('v4l2-ctl', `does not run: ${saidWhat(r)}`, fix);
  return ok('v4l2-ctl', firstLine(r.stdout));
}

async function sqliteCheck(env: NodeJS.ProcessEnv): Promise<DoctorCheck> {
  const r = await runTool(CHECKPOINT_TOOL, ['-version'], { env, timeoutMs: TOOL_TIMEOUT_MS });
  const fix = 'sudo apt install sqlite3';
  const what = "the database's WAL checkpoints run on the event loop (a stall of the cameras' pipes every 25-100 s of recording, hundreds of ms on an SD card)";
  if (!r.found) return warn('sqlite3', `not installed: ${what}`, fix);
  if (r.exitCode !== 0) return warn('sqlite3', `does not run (${saidWhat(r)}): ${what}`, fix);
  return ok('sqlite3', `${firstLine(r.stdout).split(' ')[0]}: WAL checkpoints run off the event loop`);
}

async function rpicamCheck(env: NodeJS.ProcessEnv, csiFound: number): Promise<DoctorCheck> {
  const fixInstall = 'sudo apt install rpicam-apps';
  let tool = 'rpicam-vid';
  let r = await versionLine(tool, env);
  if (!r.found) {
    tool = 'libcamera-vid';
    r = await versionLine(tool, env);
  }
  const hello = (await versionLine('rpicam-hello', env)).found || (await versionLine('libcamera-hello', env)).found;
  // Without a CSI camera an unusable rpicam-apps costs nothing yet.
  const bad = (detail: string, fix: string): DoctorCheck => (csiFound > 0 ? fail('rpicam-apps', detail, fix) : warn('rpicam-apps', detail, fix));
  if (!r.found) return warn('rpicam-apps', `not installed (no rpicam-vid${hello ? '' : ', no rpicam-hello'}): CSI cameras cannot be used`, fixInstall);
  const v = r.exitCode === 0 ? parseRpicamVersion(r.stdout) : null;
  if (!v) return bad(`${tool} --version: ${saidWhat(r)}`, fixInstall);
  const problem = rpicamVersionProblem(v);
  const name = v.apps ? `${tool} v${v.apps.join('.')}` : `${tool} (${v.buildLine})`;
  const lib = v.libcamera ? `, libcamera ${v.libcamera}` : '';
  if (problem) {
    // A build that does not list its capabilities may be the -lite one (no libav output): `apt install
    // rpicam-apps` both upgrades the full build and replaces the lite one; a full-upgrade would keep lite.
    const fix =
      v.libav === false
        ? 'sudo apt install rpicam-apps (replaces rpicam-apps-lite)'
        : v.libav === null
          ? 'sudo apt update && sudo apt install rpicam-apps (the build with libav output; replaces rpicam-apps-lite)'
          : 'sudo apt update && sudo apt full-upgrade';
    return bad(`${name}${lib}: ${problem}`, fix);
  }
  if (!hello) return warn('rpicam-apps', `${name}${lib}, but no rpicam-hello: CSI cameras cannot be listed`, fixInstall);
  return ok('rpicam-apps', `${name}${lib}${v.libav ? ', libav output' : ''}`);
}

async function gpiodCheck(env: NodeJS.ProcessEnv): Promise<DoctorCheck> {
  const fix = 'sudo apt install gpiod';
  const mon = await versionLine('gpiomon', env);
  const set = await versionLine('gpioset', env);
  const missing = [mon.found ? null : 'gpiomon', set.found ? null : 'gpioset'].filter((x) => x !== null);
  if (missing.length) return warn('gpiod tools', `${missing.join(' and ')} not installed: GPIO triggers and outputs cannot be used`, fix);
  const v = parseGpiodVersion(mon.stdout);
  if (!v) return warn('gpiod tools', `gpiomon --version: ${saidWhat(mon)}: not libgpiod 1.x or 2.x`, fix);
  const style = v.major === 1 ? 'v1 tools: chip and offsets as arguments' : 'v2 tools: -c chip, --edges, kernel debounce';
  return ok('gpiod tools', `gpiomon and gpioset from libgpiod v${v.text} (${style})`);
}

function camerasCheck(found: DiscoveryResult | Error): DoctorCheck {
  if (found instanceof Error) return fail('cameras', `discovery failed: ${found.message}`, 'sudo apt install v4l-utils');
  const parts = [
    ...found.usb.map((c) => `USB ${c.name} (${c.device})`),
    ...found.csi.map((c) => `CSI ${c.sensor} (camera ${c.index})`),
  ];
  const skipped = found.skipped.length ? `; ${found.skipped.length} other video node${found.skipped.length === 1 ? '' : 's'} skipped` : '';
  if (parts.length === 0)
    return warn('cameras', `none found${skipped}`, 'plug in the USB camera or reseat the CSI ribbon cable, then check `v4l2-ctl --list-devices` and `rpicam-hello --list-cameras`');
  return ok('cameras', `${parts.length} found: ${parts.join(', ')}${skipped}`);
}

/** "Leap status : Normal" is chrony's word for synchronised. */
function chronyState(text: string): { synced: boolean; reference: string; offset: string | null } | null {
  const field = (name: string): string | null => new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(text)?.[1]?.trim() ?? null;
  const leap = field('Leap status');
  if (leap === null) return null;
  return { synced: leap === 'Normal', reference: field('Reference ID') ?? '?', offset: field('System time') };
}

async function clockCheck(env: NodeJS.ProcessEnv): Promise<DoctorCheck> {
  const name = 'clock sync';
  const chrony = await runTool('chronyc', ['tracking'], { env, timeoutMs: TOOL_TIMEOUT_MS });
  const c = chrony.found && chrony.exitCode === 0 ? chronyState(chrony.stdout) : null;
  if (c?.synced) return ok(name, `chrony synchronised to ${c.reference}${c.offset ? ` (system time ${c.offset})` : ''}`);
  if (c) return warn(name, `chrony is not synchronised (Reference ID ${c.reference}): wall-clock times of recordings may be off`, 'check the network and `chronyc sources -v`; start rigcam after time-sync.target');
  const notes: string[] = [chrony.found ? `chronyc tracking: ${saidWhat(chrony)}` : 'no chronyc'];
  const td = await runTool('timedatectl', ['show', '-p', 'NTPSynchronized'], { env, timeoutMs: TOOL_TIMEOUT_MS });
  const value = td.found && td.exitCode === 0 ? /^NTPSynchronized=(\w+)/m.exec(td.stdout)?.[1] : undefined;
  if (value === 'yes') return ok(name, 'systemd-timesyncd: NTPSynchronized=yes');
  if (value === 'no') return warn(name, 'systemd-timesyncd: NTPSynchronized=no: wall-clock times of recordings may be off', 'sudo timedatectl set-ntp true, and check the network');
  notes.push(td.found ? `timedatectl: ${saidWhat(td)}` : 'no timedatectl');
  return warn(name, `cannot tell (${notes.join('; ')})`, 'sudo apt install chrony, or enable systemd-timesyncd (sudo timedatectl set-ntp true)');
}

function formatBytes(n: number): string {
  return n >= GiB ? `${(n / GiB).toFixed(1)} GiB` : `${(n / 1024 ** 2).toFixed(0)} MiB`;
}

async function diskCheck(dataDir: string): Promise<DoctorCheck> {
  // Before the first run the data dir may not exist: its volume is the nearest existing ancestor's.
  let dir = path.resolve(dataDir);
  while (!existsSync(dir) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  const where = dir === path.resolve(dataDir) ? dir : `${dir} (${dataDir} does not exist yet)`;
  try {
    const s = await statfs(dir);
    const free = s.bavail * s.bsize;
    const total = s.blocks * s.bsize;
    const detail = `${formatBytes(free)} free of ${formatBytes(total)} on ${where}`;
    const fix = 'delete or copy off old recordings, or set data_dir to a bigger volume';
    if (free < FAIL_FREE) return fail('disk', detail, fix);
    if (free < WARN_FREE) return warn('disk', detail, fix);
    return ok('disk', detail);
  } catch (err) {
    return fail('disk', `cannot read free space of ${where}: ${(err as Error).message}`, 'check that data_dir is on a mounted volume');
  }
}

async function groupsCheck(env: NodeJS.ProcessEnv): Promise<DoctorCheck> {
  const user = await runTool('id', ['-un'], { env, timeoutMs: TOOL_TIMEOUT_MS });
  const groups = await runTool('id', ['-Gn'], { env, timeoutMs: TOOL_TIMEOUT_MS });
  if (!user.found || !groups.found) return warn('groups', 'cannot tell (no id command)', 'sudo apt install coreutils');
  if (user.exitCode !== 0 || groups.exitCode !== 0) return warn('groups', `id failed: ${saidWhat(groups.exitCode !== 0 ? groups : user)}`, 'run doctor as the service user');
  const name = user.stdout.trim();
  if (name === 'root') return ok('groups', 'running as root: every device is accessible');
  const have = new Set(groups.stdout.trim().split(/\s+/));
  const missing = GROUPS.filter((g) => !have.has(g));
  if (missing.length === 0) return ok('groups', `${name} is in ${GROUPS.join(', ')}`);
  return warn(
    'groups',
    `${name} is not in ${missing.join(', ')} (needed for ${missing.map((g) => GROUP_USE[g]).join('; ')})`,
    `sudo usermod -aG ${missing.join(',')} ${name}, then log in again (or restart the service)`,
  );
}

export async function runDoctor(opts: DoctorOptions = {}): Promise<DoctorReport> {
  const env = opts.env ?? process.env;
  const rootDir = opts.rootDir ?? '/';
  const dataDir = opts.dataDir ?? path.resolve('data');
  const board = await readBoard(rootDir);
  const discovery = discoverCameras({ rootDir, env, timeoutMs: TOOL_TIMEOUT_MS }).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
  const [ff, v4l2, gpiod, sqlite, clock, disk, groups, found] = await Promise.all([
    ffmpegChecks(env, rootDir, board),
    v4l2Check(env),
    gpiodCheck(env),
    sqliteCheck(env),
    clockCheck(env),
    diskCheck(dataDir),
    groupsCheck(env),
    discovery,
  ]);
  const rpicam = await rpicamCheck(env, found instanceof Error ? 0 : found.csi.length);
  const checks = [boardCheck(board), ...ff, v4l2, rpicam, gpiod, sqlite, camerasCheck(found), clock, disk, groups];
  return { lines: checks.map(formatCheck), ok: checks.every((c) => c.level !== 'FAIL'), checks };
}

/**
 * `rigcam doctor --save`: the report as `<dataDir>/doctor.txt` (replaced atomically), headed by when it ran and its
 * verdict, so what the first boot found stays readable on the box after the journal has rotated. Returns the path.
 */
export function saveDoctorReport(report: DoctorReport, dataDir: string, now: Date = new Date()): string {
  const warns = report.checks.filter((c) => c.level === 'WARN').length;
  const fails = report.checks.filter((c) => c.level === 'FAIL').length;
  const verdict = fails ? `FAIL (${fails} failed, ${warns} warnings)` : `OK (${warns} warnings)`;
  const file = path.join(dataDir, 'doctor.txt');
  mkdirSync(dataDir, { recursive: true });
  replaceFile(file, `rigcam doctor ${now.toISOString()}: ${verdict}\n${report.lines.join('\n')}\n`);
  return file;
}
