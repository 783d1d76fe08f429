import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { listFfmpegEncoders } from '../../src/cameras/encoder-choice.ts';
import { formatCheck, runDoctor, type DoctorReport } from '../../src/cli/doctor.ts';
import { whichSync } from '../../src/supervise/child-supervisor.ts';
import { fakeRootFromSystem, FIXTURES, removeDir, STANDINS, V4L2_FIXTURES } from '../cameras/fake-box.ts';
import { runCli } from '../helpers/cli.ts';
import { tmpDir } from '../helpers/tmp.ts';

// Real outputs of the system tools the doctor reads, replayed by small stand-ins the tests write.
// `chronyc tracking` of a synchronised server, live output of https://ag6qr.net/timeserverstatus (April 2024).
const CHRONY_SYNCED = `Reference ID    : 50505300 (PPS)
Stratum         : 1
Ref time (UTC)  : Fri Apr 19 22:12:03 2024
System time     : 0.000000072 seconds fast of NTP time
Last offset     : -0.000000011 seconds
RMS offset      : 0.000000195 seconds
Frequency       : 1.789 ppm slow
Residual freq   : -0.000 ppm
Skew            : 0.016 ppm
Root delay      : 0.000000001 seconds
Root dispersion : 0.000011804 seconds
Update interval : 16.0 seconds
Leap status     : Normal
`;
// `chronyc tracking` of a client that never reached its server (a troubleshooting note, find_string id 45490258073).
const CHRONY_UNSYNCED = `Reference ID    : 00000000 ()
Stratum         : 0
Ref time (UTC)  : Thu Jan 01 00:00:00 1970
System time     : 0.000000000 seconds fast of NTP time
Last offset     : +0.000000000 seconds
RMS offset      : 0.000000000 seconds
Frequency       : 0.000 ppm slow
Residual freq   : +0.000 ppm
Skew            : 0.000 ppm
Root delay      : 1.000000000 seconds
Root dispersion : 1.000000000 seconds
Update interval : 0.0 seconds
Leap status     : Not synchronised
`;
// chronyc without a running chronyd prints this and exits 1.
const CHRONY_NO_DAEMON = '506 Cannot talk to daemon\n';
// `groups` of the default user on Raspberry Pi OS (Bookworm), as quoted in a public Pi guide (find_string id 28838843119).
const PI_GROUPS = 'pi adm dialout cdrom sudo audio video plugdev games users input render netdev gpio i2c spi';

const LINE = /^(OK {2}|WARN |FAIL )[A-Za-z0-9.\- ]+: .+$/;
const PI4 = path.join(V4L2_FIXTURES, 'systems/raspi4-mainsailos');

/** A folder of stand-ins for chronyc, timedatectl and id that print the given outputs. */
function systemTools(o: { chrony?: { out: string; code: number }; ntpSynchronized?: 'yes' | 'no'; user?: string; groups?: string }): string {
  const dir = tmpDir('rigcam-tools-');
  const script = (name: string, body: string): void => {
    writeFileSync(path.join(dir, name), `#!/usr/bin/env bash\n${body}\n`);
    chmodSync(path.join(dir, name), 0o755);
  };
  const heredoc = (text: string): string => `cat <<'RIGCAM_EOF'\n${text.replace(/\n$/, '')}\nRIGCAM_EOF`;
  if (o.chrony) script('chronyc', `[ "$1" = tracking ] || exit 1\n${heredoc(o.chrony.out)}\nexit ${o.chrony.code}`);
  if (o.ntpSynchronized) script('timedatectl', `[ "$1 $2 $3" = "show -p NTPSynchronized" ] || exit 1\necho NTPSynchronized=${o.ntpSynchronized}`);
  if (o.user) script('id', `case "$1" in -un) echo ${o.user} ;; -Gn) echo '${o.groups ?? o.user}' ;; *) exit 1 ;; esac`);
  return dir;
}

const madeRoots: string[] = [];
after(async () => {
  for (const d of madeRoots) await removeDir(d);
});

async function fakeRoot(model: string | null, system?: string): Promise<string> {
  const root = system ? await fakeRootFromSystem(system) : tmpDir('rigcam-root-');
  if (system) madeRoots.push(root);
  if (model !== null) {
    mkdirSync(path.join(root, 'proc/device-tree'), { recursive: true });
    writeFileSync(path.join(root, 'proc/device-tree/model'), `${model}\0`);
  }
  return root;
}

function line(r: DoctorReport, check: string): string {
  const found = r.lines.find((l) => l.replace(/^(OK {2}|WARN |FAIL )/, '').startsWith(`${check}: `));
  assert.ok(found, `no "${check}" line in:\n${r.lines.join('\n')}`);
  return found;
}

const CHECKS = ['board', 'ffmpeg', 'ffprobe', 'H.264 encoders', 'hardware encoder', 'v4l2-ctl', 'rpicam-apps', 'gpiod tools', 'sqlite3', 'cameras', 'clock sync', 'disk', 'groups'];

function assertShape(r: DoctorReport): void {
  assert.equal(r.lines.length, CHECKS.length, r.lines.join('\n'));
  r.lines.forEach((l, i) => {
    assert.match(l, LINE);
    assert.ok(l.includes(` ${CHECKS[i]}: `), `line ${i} should be ${CHECKS[i]}: ${l}`);
    if (!l.startsWith('OK')) assert.match(l, / — fix: \S/, l);
  });
  assert.equal(r.ok, r.lines.every((l) => !l.startsWith('FAIL')));
}

describe('rigcam doctor', () => {
  it('runs on this machine as it is and says what is missing without crashing', async () => {
    const r = await runDoctor({ dataDir: tmpDir() });
    assertShape(r);
    // The tests themselves need ffmpeg with libx264, so these hold wherever they run.
    assert.match(line(r, 'ffmpeg'), /^OK {2}ffmpeg: ffmpeg \S+$/);
    assert.match(line(r, 'H.264 encoders'), /^OK {2}H\.264 encoders: libx264 yes/);
    assert.match(line(r, 'disk'), /^(OK|WARN|FAIL) +disk: [\d.]+ [MG]iB free of [\d.]+ [MG]iB on \//);
    if (!whichSync('rpicam-vid') && !whichSync('libcamera-vid'))
      assert.equal(line(r, 'rpicam-apps'), 'WARN rpicam-apps: not installed (no rpicam-vid, no rpicam-hello): CSI cameras cannot be used — fix: sudo apt install rpicam-apps');
    if (!whichSync('chronyc')) assert.match(line(r, 'clock sync'), /^(OK {2}clock sync: systemd-timesyncd|WARN clock sync: )/);
  });

  it('a Pi 4 box with a USB and a CSI camera, through the stand-ins: every check passes', async () => {
    const root = await fakeRoot('Raspberry Pi 4 Model B Rev 1.5', PI4);
    const tools = systemTools({ chrony: { out: CHRONY_SYNCED, code: 0 }, user: 'pi', groups: PI_GROUPS });
    const env = {
      ...process.env,
      PATH: [STANDINS, tools, process.env.PATH].join(path.delimiter),
      RIGCAM_FIXTURE_DIR: PI4,
      RIGCAM_RPICAM_FIXTURE: path.join(FIXTURES, 'rpicam/pi4-imx708-wide/list-cameras.txt'),
      GPIOD_STANDIN_VERSION: '2',
    };
    const r = await runDoctor({ env, rootDir: root, dataDir: tmpDir() });
    assertShape(r);
    const m2m = (await listFfmpegEncoders()).includes('h264_v4l2m2m');
    assert.equal(line(r, 'board'), 'OK  board: Raspberry Pi 4 Model B Rev 1.5');
    assert.equal(
      line(r, 'hardware encoder'),
      m2m
        ? `OK  hardware encoder: ${root}/dev/video11 (bcm2835-codec-encode), used through h264_v4l2m2m`
        : `WARN hardware encoder: ${root}/dev/video11 exists but this ffmpeg has no h264_v4l2m2m: encoding falls back to libx264 — fix: sudo apt install ffmpeg (Raspberry Pi OS's build)`,
    );
    assert.equal(line(r, 'v4l2-ctl'), 'OK  v4l2-ctl: v4l2-ctl 1.22.1 (rigcam stand-in)');
    assert.equal(line(r, 'rpicam-apps'), 'OK  rpicam-apps: rpicam-vid v1.11.0, libcamera v0.6.0+rpt20251202, libav output');
    assert.equal(line(r, 'gpiod tools'), 'OK  gpiod tools: gpiomon and gpioset from libgpiod v2.2.1 (v2 tools: -c chip, --edges, kernel debounce)');
    assert.match(line(r, 'sqlite3'), /^OK  sqlite3: 3\.\d+\.\d+: WAL checkpoints run off the event loop$/);
    assert.equal(line(r, 'cameras'), `OK  cameras: 2 found: USB webcam (${root}/dev/video2), CSI imx708_wide (camera 0); 17 other video nodes skipped`);
    assert.equal(line(r, 'clock sync'), 'OK  clock sync: chrony synchronised to 50505300 (PPS) (system time 0.000000072 seconds fast of NTP time)');
    assert.equal(line(r, 'groups'), 'OK  groups: pi is in video, gpio, dialout');
    assert.equal(r.ok, m2m);
    if (m2m) assert.deepEqual(r.lines.filter((l) => !l.startsWith('OK')), [], 'nothing to fix');
  });

  it('a Pi 5 with an old rpicam-apps, an unsynchronised clock and a user outside gpio/dialout: says what to fix', async () => {
    const root = await fakeRoot('Raspberry Pi 5 Model B Rev 1.0');
    const tools = systemTools({ chrony: { out: CHRONY_UNSYNCED, code: 0 }, user: 'lab', groups: 'lab adm sudo video users' });
    const env = {
      ...process.env,
      PATH: [STANDINS, tools, process.env.PATH].join(path.delimiter),
      RIGCAM_RPICAM_FIXTURE: path.join(FIXTURES, 'rpicam/pi5-imx708-camera-module-3/list-cameras.txt'),
      RIGCAM_RPICAM_VERSION: path.join(FIXTURES, 'rpicam-vid/version-v1.6.0-source-build.txt'),
      GPIOD_STANDIN_VERSION: '1',
    };
    const r = await runDoctor({ env, rootDir: root, dataDir: path.join(tmpDir(), 'not/made/yet') });
    assertShape(r);
    assert.equal(line(r, 'hardware encoder'), 'OK  hardware encoder: none: a Pi 5 has no H.264 encoder, libx264 encodes in software');
    // A CSI camera is there, so an rpicam-apps that cannot time its frames is a failure, not a warning.
    assert.equal(
      line(r, 'rpicam-apps'),
      'FAIL rpicam-apps: rpicam-vid v1.6.0, libcamera v0.4.0: rpicam-apps v1.6.0 does not report frame capture times (needs 1.8.0 or newer) — fix: sudo apt update && sudo apt full-upgrade',
    );
    assert.equal(line(r, 'cameras'), 'OK  cameras: 1 found: CSI imx708 (camera 0)');
    assert.equal(line(r, 'gpiod tools'), 'OK  gpiod tools: gpiomon and gpioset from libgpiod v1.6.3 (v1 tools: chip and offsets as arguments)');
    assert.match(line(r, 'clock sync'), /^WARN clock sync: chrony is not synchronised \(Reference ID 00000000 \(\)\).* — fix: /);
    assert.equal(
      line(r, 'groups'),
      'WARN groups: lab is not in gpio, dialout (needed for GPIO triggers; serial triggers) — fix: sudo usermod -aG gpio,dialout lab, then log in again (or restart the service)',
    );
    assert.match(line(r, 'disk'), /on \/\S+ \(\/\S+\/not\/made\/yet does not exist yet\)$/);
    assert.equal(r.ok, false);
  });

  it('a CSI box with the rpicam-apps-lite build (no capabilities line): fails and names the package with libav output', async () => {
    const root = await fakeRoot('Raspberry Pi 4 Model B Rev 1.5', PI4);
    const tools = systemTools({ chrony: { out: CHRONY_SYNCED, code: 0 }, user: 'pi', groups: PI_GROUPS });
    const env = {
      ...process.env,
      PATH: [STANDINS, tools, process.env.PATH].join(path.delimiter),
      RIGCAM_FIXTURE_DIR: PI4,
      RIGCAM_RPICAM_FIXTURE: path.join(FIXTURES, 'rpicam/pi4-imx708-wide/list-cameras.txt'),
      RIGCAM_RPICAM_VERSION: path.join(FIXTURES, 'rpicam-vid/version-v1.5.2-lite.txt'),
      GPIOD_STANDIN_VERSION: '2',
    };
    const r = await runDoctor({ env, rootDir: root, dataDir: tmpDir() });
    assertShape(r);
    // `apt full-upgrade` would keep the lite build: the fix must install the full one.
    assert.equal(
      line(r, 'rpicam-apps'),
      'FAIL rpicam-apps: rpicam-vid v1.5.2, libcamera v0.3.2+27-7330f29b: rpicam-apps v1.5.2 does not report frame capture times (needs 1.8.0 or newer) — fix: sudo apt update && sudo apt install rpicam-apps (the build with libav output; replaces rpicam-apps-lite)',
    );
    assert.equal(r.ok, false);
  });

  it('a CSI box with a new rpicam-apps but the build without libav output: fails, says so and names the fix', async () => {
    const root = await fakeRoot('Raspberry Pi 4 Model B Rev 1.5', PI4);
    const tools = systemTools({ chrony: { out: CHRONY_SYNCED, code: 0 }, user: 'pi', groups: PI_GROUPS });
    const version = path.join(tmpDir(), 'version.txt');
    // What v1.11's -lite build prints: the capabilities line with libav:0.
    writeFileSync(version, readFileSync(path.join(FIXTURES, 'rpicam-vid/version-v1.11.0-pi5-trixie.txt'), 'utf8').replace('libav:1', 'libav:0'));
    const env = {
      ...process.env,
      PATH: [STANDINS, tools, process.env.PATH].join(path.delimiter),
      RIGCAM_FIXTURE_DIR: PI4,
      RIGCAM_RPICAM_FIXTURE: path.join(FIXTURES, 'rpicam/pi4-imx708-wide/list-cameras.txt'),
      RIGCAM_RPICAM_VERSION: version,
      GPIOD_STANDIN_VERSION: '2',
    };
    const r = await runDoctor({ env, rootDir: root, dataDir: tmpDir() });
    assert.equal(
      line(r, 'rpicam-apps'),
      'FAIL rpicam-apps: rpicam-vid v1.11.0, libcamera v0.6.0+rpt20251202: this rpicam-apps has no libav output (the -lite package) — fix: sudo apt install rpicam-apps (replaces rpicam-apps-lite)',
    );
    assert.equal(r.ok, false);
  });

  it('--save: the report in <data_dir>/doctor.txt, headed by when it ran and the verdict (what the first boot leaves)', async () => {
    const data = path.join(tmpDir(), 'data');
    const config = path.join(tmpDir(), 'rigcam.yaml');
    writeFileSync(config, `data_dir: ${data}\n`);
    const res = await runCli(['--config', config, 'doctor', '--save'], { timeoutMs: 120_000 });
    const report = readFileSync(path.join(data, 'doctor.txt'), 'utf8');
    const [head, ...lines] = report.trimEnd().split('\n');
    assert.match(head!, /^rigcam doctor \d{4}-\d\d-\d\dT[\d:.]+Z: (OK|FAIL) \(/);
    assert.equal(/: FAIL/.test(head!), res.code === 1, `verdict matches the exit status (${res.code})`);
    assert.deepEqual(lines, res.stdout.trimEnd().split('\n').slice(0, -1), 'the same lines as printed');
    assert.match(res.stdout.trimEnd().split('\n').at(-1)!, new RegExp(`^report written to ${data}/doctor\\.txt$`));
    assert.ok(lines.some((l) => /^(OK {2}|WARN |FAIL )rpicam-apps: /.test(l)));
  });

  it('falls back to systemd-timesyncd when chronyd is not running', async () => {
    for (const [synced, expected] of [
      ['yes', 'OK  clock sync: systemd-timesyncd: NTPSynchronized=yes'],
      ['no', 'WARN clock sync: systemd-timesyncd: NTPSynchronized=no: wall-clock times of recordings may be off — fix: sudo timedatectl set-ntp true, and check the network'],
    ] as const) {
      const tools = systemTools({ chrony: { out: CHRONY_NO_DAEMON, code: 1 }, ntpSynchronized: synced, user: 'root' });
      const r = await runDoctor({ env: { ...process.env, PATH: [tools, process.env.PATH].join(path.delimiter) }, rootDir: tmpDir(), dataDir: tmpDir() });
      assert.equal(line(r, 'clock sync'), expected);
      assert.equal(line(r, 'groups'), 'OK  groups: running as root: every device is accessible');
    }
  });

  it('with a PATH holding no tools at all: every tool reported missing, nothing thrown', async () => {
    const root = await fakeRoot('Raspberry Pi 4 Model B Rev 1.5', PI4);
    const r = await runDoctor({ env: { PATH: tmpDir('rigcam-empty-path-') }, rootDir: root, dataDir: tmpDir() });
    assertShape(r);
    assert.equal(r.ok, false);
    assert.equal(line(r, 'ffmpeg'), 'FAIL ffmpeg: not installed (not found on PATH): no camera can be recorded — fix: sudo apt install ffmpeg');
    assert.equal(line(r, 'ffprobe'), 'FAIL ffprobe: not installed (not found on PATH): recordings cannot be verified — fix: sudo apt install ffmpeg');
    assert.equal(line(r, 'H.264 encoders'), 'FAIL H.264 encoders: unknown: ffmpeg does not run — fix: sudo apt install ffmpeg');
    assert.equal(line(r, 'hardware encoder'), `WARN hardware encoder: ${root}/dev/video11 exists, but without ffmpeg nothing uses it — fix: sudo apt install ffmpeg`);
    assert.equal(line(r, 'v4l2-ctl'), 'FAIL v4l2-ctl: not installed: USB cameras cannot be told from the Pi’s codec and ISP nodes — fix: sudo apt install v4l-utils');
    assert.equal(line(r, 'rpicam-apps'), 'WARN rpicam-apps: not installed (no rpicam-vid, no rpicam-hello): CSI cameras cannot be used — fix: sudo apt install rpicam-apps');
    assert.equal(line(r, 'gpiod tools'), 'WARN gpiod tools: gpiomon and gpioset not installed: GPIO triggers and outputs cannot be used — fix: sudo apt install gpiod');
    assert.equal(line(r, 'sqlite3'), "WARN sqlite3: not installed: the database's WAL checkpoints run on the event loop (a stall of the cameras' pipes every 25-100 s of recording, hundreds of ms on an SD card) — fix: sudo apt install sqlite3");
    assert.match(line(r, 'cameras'), /^FAIL cameras: discovery failed: v4l2-ctl not found on PATH .* — fix: sudo apt install v4l-utils$/);
    assert.equal(line(r, 'clock sync'), 'WARN clock sync: cannot tell (no chronyc; no timedatectl) — fix: sudo apt install chrony, or enable systemd-timesyncd (sudo timedatectl set-ntp true)');
    assert.equal(line(r, 'groups'), 'WARN groups: cannot tell (no id command) — fix: sudo apt install coreutils');
    assert.match(line(r, 'disk'), /^OK {2}disk: /);
  });

  it('formats OK without a fix and the others with one', () => {
    assert.equal(formatCheck({ level: 'OK', check: 'disk', detail: '9.0 GiB free', fix: 'ignored' }), 'OK  disk: 9.0 GiB free');
    assert.equal(formatCheck({ level: 'WARN', check: 'groups', detail: 'x', fix: 'y' }), 'WARN groups: x — fix: y');
    assert.equal(formatCheck({ level: 'FAIL', check: 'ffmpeg', detail: 'missing', fix: 'sudo apt install ffmpeg' }), 'FAIL ffmpeg: missing — fix: sudo apt install ffmpeg');
  });
});
