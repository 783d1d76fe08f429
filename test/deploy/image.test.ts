import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { parseConfig } from '../../src/config/load.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { makeFakeRelease } from './fake-release.ts';
import { skipUnlessCi } from '../helpers/requires.ts';

/**
 * deploy/image/build-image.sh on a small synthetic Raspberry Pi OS-like image built here (MBR,
 * FAT boot partition written with mtools, ext4 root), with --skip-packages (the emulated apt/npm
 * stage needs the real arm64 image). Then deploy/image/firstboot.sh against a copy of the result,
 * as the box's first boot would run it.
 */

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const buildScript = path.join(repo, 'deploy/image/build-image.sh');
const firstboot = path.join(repo, 'deploy/image/firstboot.sh');

const SECTOR = 512;
const DISK_ID = '0x5e3da7a1';
const CMDLINE = `console=serial0,115200 console=tty1 root=PARTUUID=5e3da7a1-02 rootfstype=ext4 fsck.repair=yes rootwait quiet init=/usr/lib/raspberrypi-sys-mods/firstboot\n`;
const TOKEN = 'lab-token-0123456789abcdef';

function run(cmd: string, args: string[], input?: string): string {
  return execFileSync(cmd, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
}

function has(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0;
}

/** Why this machine cannot run the image test, or null. */
function whyNot(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (loop devices and mount)';
  if (!existsSync('/dev/loop-control')) return 'no loop devices (/dev/loop-control)';
  const missing = ['sfdisk', 'losetup', 'mkfs.fat', 'mkfs.ext4', 'mcopy', 'mtype', 'mdir', 'e2fsck', 'resize2fs', 'dumpe2fs'].filter((t) => !has(t));
  if (missing.length) return `missing tools: ${missing.join(', ')} (apt-get install fdisk dosfstools mtools e2fsprogs)`;
  const probe = spawnSync('losetup', ['-f'], { encoding: 'utf8' });
  if (probe.status !== 0) return `losetup cannot find a free loop device: ${probe.stderr.trim()}`;
  return null;
}

interface Part {
  start: number;
  size: number;
}

/** Partitions (bytes) and the disk id from sfdisk's dump. */
function partitions(image: string): { id: string; parts: Part[] } {
  const dump = run('sfdisk', ['-d', image]);
  const id = /^label-id: (\S+)/m.exec(dump)?.[1] ?? '';
  const parts = [...dump.matchAll(/start=\s*(\d+), size=\s*(\d+)/g)].map((m) => ({ start: Number(m[1]) * SECTOR, size: Number(m[2]) * SECTOR }));
  return { id, parts };
}

/** A 64 MiB image shaped like Raspberry Pi OS Lite: 16 MiB FAT boot, 44 MiB ext4 root. */
function makeBaseImage(dir: string): string {
  const img = path.join(dir, 'base.img');
  run('truncate', ['-s', '64M', img]);
  run('sfdisk', ['-q', img], `label: dos\nlabel-id: ${DISK_ID}\nstart=8192, size=32768, type=c\nstart=40960, type=83\n`);
  run('mkfs.fat', ['--offset', '8192', '-n', 'BOOTFS', img, '16384']);
  const bootFiles = path.join(dir, 'bootfiles');
  mkdirSync(bootFiles);
  writeFileSync(path.join(bootFiles, 'cmdline.txt'), CMDLINE);
  writeFileSync(path.join(bootFiles, 'config.txt'), 'arm_64bit=1\ndtparam=audio=on\n');
  run('mcopy', ['-i', `${img}@@${8192 * SECTOR}`, path.join(bootFiles, 'cmdline.txt'), path.join(bootFiles, 'config.txt'), '::']);

  const tree = path.join(dir, 'tree');
  const files: Record<string, string> = {
    'etc/os-release': 'PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\nID=debian\n',
    'etc/passwd': 'root:x:0:0:root:/root:/bin/bash\npi:x:1000:1000:,,,:/home/pi:/bin/bash\n',
    'etc/shadow': 'root:*:19000:0:99999:7:::\npi:*:19000:0:99999:7:::\n',
    'etc/group': 'root:x:0:\nadm:x:4:pi\ndialout:x:20:pi\nsudo:x:27:pi\nvideo:x:44:pi\nplugdev:x:46:pi\ngpio:x:993:pi\npi:x:1000:\n',
    'etc/gshadow': 'root:*::\nadm:*::pi\ndialout:*::pi\nsudo:*::pi\nvideo:*::pi\nplugdev:*::pi\ngpio:!::pi\npi:!::\n',
    'etc/hostname': 'raspberrypi\n',
    'etc/hosts': '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n\n127.0.1.1\traspberrypi\n',
    'etc/resolv.conf': '',
    'lib/systemd/system/ssh.service': '[Unit]\nDescription=OpenBSD Secure Shell server\n[Service]\nExecStart=/usr/sbin/sshd -D\n[Install]\nWantedBy=multi-user.target\nAlias=sshd.service\n',
  };
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(tree, rel)), { recursive: true });
    writeFileSync(path.join(tree, rel), text);
  }
  chmodSync(path.join(tree, 'etc/shadow'), 0o640);
  for (const d of ['boot/firmware', 'etc/systemd/system', 'opt', 'usr/lib', 'var/lib', 'home/pi']) mkdirSync(path.join(tree, d), { recursive: true });
  run('mkfs.ext4', ['-F', '-q', '-d', tree, '-E', `offset=${40960 * SECTOR}`, img, '44M']);
  return img;
}

function mtype(image: string, offset: number, file: string): string {
  return run('mtype', ['-i', `${image}@@${offset}`, `::${file}`]);
}

const reason = whyNot();

describe('build-image.sh on a synthetic Raspberry Pi OS image', { skip: skipUnlessCi(reason) }, () => {
  // Unmount before tmpDir's own after() removes the folder: hooks run in the order registered.
  after(() => {
    if (root) spawnSync('umount', [root]);
    if (loop) spawnSync('losetup', ['-d', loop]);
  });
  const dir = tmpDir('rigcam-image-');
  let base = '';
  let out = '';
  let root = '';
  let loop = '';
  let buildLog = '';

  before(() => {
    base = makeBaseImage(dir);
    out = path.join(dir, 'rigcam.img');
    const release = makeFakeRelease(dir, '9.8.7');
    const key = path.join(dir, 'admin.pub');
    writeFileSync(key, 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHRlc3RrZXl0ZXN0a2V5dGVzdGtleXRlc3RrZXk lab@test\n');
    const res = spawnSync(
      'bash',
      [buildScript, '--base', base, '--out', out, '--release', release, '--hostname', 'box-07', '--admin-user', 'lab', '--ssh-key', key, '--token', TOKEN, '--grow-mb', '16', '--skip-packages'],
      { encoding: 'utf8', timeout: 120_000 },
    );
    buildLog = res.stdout + res.stderr;
    assert.equal(res.status, 0, `build-image.sh failed:\n${buildLog}`);

    const { parts } = partitions(out);
    loop = run('losetup', ['-f', '--show', '-r', '-o', String(parts[1].start), '--sizelimit', String(parts[1].size), out]).trim();
    root = path.join(dir, 'mnt');
    mkdirSync(root);
    run('mount', ['-t', 'ext4', '-o', 'ro', loop, root]);
  });

  it('says the package stage was skipped and what the first boot does instead', () => {
    assert.match(buildLog, /skipped the package stage: the box installs ffmpeg v4l-utils gpiod nodejs npm python3/);
  });

  it('grows the image and the root file system, keeping the partition ids', () => {
    assert.equal(statSync(out).size, 80 * 1024 * 1024);
    const before = partitions(base);
    const after = partitions(out);
    assert.equal(after.id, DISK_ID, 'disk id (PARTUUID prefix in cmdline.txt) unchanged');
    assert.deepEqual(after.parts[0], before.parts[0]);
    assert.equal(after.parts[1].start, before.parts[1].start);
    assert.equal(after.parts[1].size, before.parts[1].size + 16 * 1024 * 1024);
    const header = run('dumpe2fs', ['-h', loop]);
    const blocks = Number(/^Block count:\s+(\d+)/m.exec(header)?.[1]);
    const blockSize = Number(/^Block size:\s+(\d+)/m.exec(header)?.[1]);
    assert.equal(blocks * blockSize, after.parts[1].size, 'ext4 fills the grown partition');
  });

  it('installs the release in a versioned directory with a current link', () => {
    assert.equal(readlinkSync(path.join(root, 'opt/rigcam/current')), 'releases/9.8.7');
    assert.ok(existsSync(path.join(root, 'opt/rigcam/current/bin/rigcam.js')));
    assert.ok(existsSync(path.join(root, 'opt/rigcam/releases/9.8.7/deploy/image/packages.txt')), 'first boot reads the package list from the release');
    assert.equal(statSync(path.join(root, 'opt/rigcam/releases/9.8.7/bin/rigcam.js')).uid, 0);
  });

  it('installs the units and enables them, with sshd', () => {
    const unitDir = path.join(root, 'etc/systemd/system');
    assert.equal(readFileSync(path.join(unitDir, 'rigcam.service'), 'utf8'), readFileSync(path.join(repo, 'deploy/systemd/rigcam.service'), 'utf8'));
    assert.equal(readFileSync(path.join(unitDir, 'rigcam-firstboot.service'), 'utf8'), readFileSync(path.join(repo, 'deploy/image/rigcam-firstboot.service'), 'utf8'));
    const wants = path.join(unitDir, 'multi-user.target.wants');
    assert.equal(readlinkSync(path.join(wants, 'rigcam.service')), '/etc/systemd/system/rigcam.service');
    assert.equal(readlinkSync(path.join(wants, 'rigcam-firstboot.service')), '/etc/systemd/system/rigcam-firstboot.service');
    // The first boot checks the box: `rigcam doctor --save` once, before rigcam starts (journal + doctor.txt).
    const doctor = readFileSync(path.join(unitDir, 'rigcam-doctor.service'), 'utf8');
    assert.equal(doctor, readFileSync(path.join(repo, 'deploy/image/rigcam-doctor.service'), 'utf8'));
    assert.equal(readlinkSync(path.join(wants, 'rigcam-doctor.service')), '/etc/systemd/system/rigcam-doctor.service');
    assert.match(doctor, /^ExecStart=\/usr\/bin\/node \/opt\/rigcam\/current\/bin\/rigcam\.js doctor --save$/m);
    assert.match(doctor, /^ConditionPathExists=!\/var\/lib\/rigcam\/doctor\.txt$/m);
    assert.match(doctor, /^Before=rigcam\.service$/m);
    assert.equal(readlinkSync(path.join(wants, 'ssh.service')), '/lib/systemd/system/ssh.service');
    const script = statSync(path.join(root, 'usr/local/lib/rigcam/firstboot.sh'));
    assert.ok(script.mode & 0o100, 'first-boot script is executable');
    // The unit's ExecStart= points at the installed script.
    assert.match(readFileSync(path.join(unitDir, 'rigcam-firstboot.service'), 'utf8'), /^ExecStart=\/usr\/local\/lib\/rigcam\/firstboot\.sh$/m);
  });

  it('creates the rigcam user in the video, gpio and dialout groups', { skip: skipUnlessCi(!has('systemd-sysusers') && 'no systemd-sysusers here (the box creates the user at boot)') }, () => {
    const passwd = readFileSync(path.join(root, 'etc/passwd'), 'utf8');
    assert.match(passwd, /^rigcam:x:\d+:\d+:rigcam camera service:\/var\/lib\/rigcam:/m);
    const group = readFileSync(path.join(root, 'etc/group'), 'utf8');
    for (const g of ['video', 'gpio', 'dialout']) {
      const members = new RegExp(`^${g}:x:\\d+:(.*)$`, 'm').exec(group)?.[1].split(',') ?? [];
      assert.ok(members.includes('rigcam'), `rigcam in ${g}: ${members}`);
    }
    assert.ok(existsSync(path.join(root, 'usr/lib/sysusers.d/rigcam.conf')));
    const conf = statSync(path.join(root, 'etc/rigcam/rigcam.yaml'));
    const gid = Number(/^rigcam:x:(\d+):/m.exec(group)?.[1]);
    assert.equal(conf.gid, gid, 'config readable by the rigcam group');
    assert.equal(conf.mode & 0o777, 0o640);
  });

  it('installs a default config that the real config schema accepts', () => {
    const text = readFileSync(path.join(root, 'etc/rigcam/rigcam.yaml'), 'utf8');
    assert.equal(text, readFileSync(path.join(repo, 'deploy/image/rigcam.default.yaml'), 'utf8'));
    const cfg = parseConfig(parse(text));
    assert.equal(cfg.data_dir, '/var/lib/rigcam');
    assert.equal(cfg.http.host, '127.0.0.1');
  });

  it('sets the hostname and the admin SSH key', () => {
    assert.equal(readFileSync(path.join(root, 'etc/hostname'), 'utf8'), 'box-07\n');
    const hosts = readFileSync(path.join(root, 'etc/hosts'), 'utf8');
    assert.match(hosts, /^127\.0\.1\.1\tbox-07$/m);
    assert.doesNotMatch(hosts, /raspberrypi/);
    assert.match(readFileSync(path.join(root, 'etc/ssh/authorized_keys/lab'), 'utf8'), /^ssh-ed25519 AAAA\S+ lab@test$/m);
    assert.match(readFileSync(path.join(root, 'etc/ssh/sshd_config.d/rigcam.conf'), 'utf8'), /^AuthorizedKeysFile .* \/etc\/ssh\/authorized_keys\/%u$/m);
    const sudoers = path.join(root, 'etc/sudoers.d/010-rigcam-admin');
    assert.equal(readFileSync(sudoers, 'utf8'), 'lab ALL=(ALL) NOPASSWD: ALL\n');
    assert.equal(statSync(sudoers).mode & 0o777, 0o440);
  });

  it('writes the boot partition with mtools and keeps Raspberry Pi OS first-boot expansion', () => {
    const boot = partitions(out).parts[0].start;
    assert.equal(mtype(out, boot, 'cmdline.txt'), CMDLINE, 'cmdline.txt (init=.../firstboot) untouched');
    const listing = run('mdir', ['-b', '-i', `${out}@@${boot}`, '::']);
    for (const f of ['ssh', 'userconf.txt', 'rigcam.txt.example', 'rigcam.txt', 'config.txt']) assert.match(listing, new RegExp(`::/${f.replace('.', '\\.')}$`, 'mi'), f);
    assert.equal(mtype(out, boot, 'userconf.txt'), 'lab:*\n');
    assert.match(mtype(out, boot, 'rigcam.txt'), new RegExp(`^token=${TOKEN}$`, 'm'));
    assert.equal(mtype(out, boot, 'rigcam.txt.example'), readFileSync(path.join(repo, 'deploy/image/rigcam.txt.example'), 'utf8'));
  });

  it('first boot moves rigcam.txt from the boot partition into /etc (run on a copy of the image root)', () => {
    const box = path.join(dir, 'firstboot-root');
    cpSync(root, box, { recursive: true, verbatimSymlinks: true });
    const bootDir = path.join(box, 'boot/firmware');
    const bootOffset = partitions(out).parts[0].start;
    run('mcopy', ['-i', `${out}@@${bootOffset}`, '::config.txt', '::rigcam.txt', bootDir]);
    // What a lab adds to the card's rigcam.txt before the first boot.
    writeFileSync(path.join(bootDir, 'rigcam.txt'), `${readFileSync(path.join(bootDir, 'rigcam.txt'), 'utf8')}hostname=rig-a3\r\nport=8090\nssh_key=ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGFub3RoZXJrZXlhbm90aGVya2V5YW5vdGhlcmtleQ tech@lab\n`);
    const res = spawnSync('bash', [firstboot], { env: { ...process.env, RIGCAM_ROOT: box }, encoding: 'utf8' });
    assert.equal(res.status, 0, res.stdout + res.stderr);

    const cfg = parseConfig(parse(readFileSync(path.join(box, 'etc/rigcam/rigcam.yaml'), 'utf8')));
    assert.equal(cfg.http.token, TOKEN);
    assert.equal(cfg.http.host, '0.0.0.0', 'a token opens the API beyond loopback');
    assert.equal(cfg.http.port, 8090);
    assert.equal(cfg.cameras[0].device, '/dev/video0', 'the rest of the config is kept');
    assert.equal(readFileSync(path.join(box, 'etc/hostname'), 'utf8'), 'rig-a3\n');
    assert.match(readFileSync(path.join(box, 'etc/hosts'), 'utf8'), /^127\.0\.1\.1\trig-a3$/m);
    assert.match(readFileSync(path.join(box, 'etc/ssh/authorized_keys/lab'), 'utf8'), /tech@lab$/m);
    assert.ok(!existsSync(path.join(bootDir, 'rigcam.txt')), 'rigcam.txt (with the token) is deleted');
    const applied = readFileSync(path.join(bootDir, 'rigcam.txt.applied'), 'utf8');
    assert.doesNotMatch(applied, new RegExp(TOKEN));
    assert.match(applied, /token=\(set, not shown\)/);
    // No userconf.txt processing here: the fallback creates the admin user.
    assert.match(readFileSync(path.join(box, 'etc/passwd'), 'utf8'), /^lab:x:\d+:\d+::\/home\/lab:\/bin\/bash$/m);
    assert.match(readFileSync(path.join(box, 'etc/group'), 'utf8'), /^sudo:x:27:pi,lab$/m);
    assert.match(res.stdout, /not installing packages into/);

    // A second boot has nothing to do and changes nothing.
    const again = spawnSync('bash', [firstboot], { env: { ...process.env, RIGCAM_ROOT: box }, encoding: 'utf8' });
    assert.equal(again.status, 0, again.stderr);
    assert.equal(parseConfig(parse(readFileSync(path.join(box, 'etc/rigcam/rigcam.yaml'), 'utf8'))).http.port, 8090);
  });

  it('refuses a base image without a Raspberry Pi boot partition', () => {
    const bad = path.join(dir, 'bad.img');
    run('truncate', ['-s', '8M', bad]);
    run('sfdisk', ['-q', bad], 'label: dos\nstart=2048, size=4096, type=c\nstart=6144, type=83\n');
    const res = spawnSync('bash', [buildScript, '--base', bad, '--out', path.join(dir, 'bad-out.img'), '--release', makeFakeRelease(path.join(dir, 'r2'), '1.0.0'), '--skip-packages'], { encoding: 'utf8' });
    assert.notEqual(res.status, 0);
    assert.match(res.stderr, /not a Raspberry Pi boot partition/);
  });
});

describe('firstboot.sh on a root tree', () => {
  it('rejects bad values, keeps the config, and reports each problem', () => {
    const box = tmpDir('rigcam-firstboot-');
    mkdirSync(path.join(box, 'etc/rigcam'), { recursive: true });
    mkdirSync(path.join(box, 'boot/firmware'), { recursive: true });
    const conf = path.join(box, 'etc/rigcam/rigcam.yaml');
    writeFileSync(conf, readFileSync(path.join(repo, 'deploy/image/rigcam.default.yaml')));
    writeFileSync(path.join(box, 'etc/hostname'), 'raspberrypi\n');
    writeFileSync(path.join(box, 'etc/hosts'), '127.0.1.1\traspberrypi\n');
    writeFileSync(path.join(box, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/bash\n');
    writeFileSync(path.join(box, 'etc/group'), 'root:x:0:\n');
    writeFileSync(path.join(box, 'boot/firmware/rigcam.txt'), 'token=short\nhostname=bad_name!\nport=99999\ncolour=blue\n');
    const res = spawnSync('bash', [firstboot], { env: { ...process.env, RIGCAM_ROOT: box }, encoding: 'utf8' });
    assert.equal(res.status, 1);
    for (const msg of [/token: at least 16/, /hostname 'bad_name!'/, /port: a number/, /unknown setting 'colour'/]) assert.match(res.stderr, msg);
    assert.equal(readFileSync(conf, 'utf8'), readFileSync(path.join(repo, 'deploy/image/rigcam.default.yaml'), 'utf8'));
    assert.equal(readFileSync(path.join(box, 'etc/hostname'), 'utf8'), 'raspberrypi\n');
  });

  it('adds http settings to a config without an http block', () => {
    const box = tmpDir('rigcam-firstboot-');
    mkdirSync(path.join(box, 'etc/rigcam'), { recursive: true });
    mkdirSync(path.join(box, 'boot'), { recursive: true });
    writeFileSync(path.join(box, 'etc/passwd'), '');
    writeFileSync(path.join(box, 'etc/group'), '');
    const conf = path.join(box, 'etc/rigcam/rigcam.yaml');
    writeFileSync(conf, 'data_dir: /var/lib/rigcam\ncameras:\n  - id: top\n    source: test\n');
    writeFileSync(path.join(box, 'boot/rigcam.txt'), `token=${TOKEN}\nlisten=127.0.0.1\n`);
    const res = spawnSync('bash', [firstboot], { env: { ...process.env, RIGCAM_ROOT: box }, encoding: 'utf8' });
    assert.equal(res.status, 0, res.stderr);
    const cfg = parseConfig(parse(readFileSync(conf, 'utf8')));
    assert.equal(cfg.http.token, TOKEN);
    assert.equal(cfg.http.host, '127.0.0.1', 'an explicit listen address wins over the token default');
    assert.equal(cfg.cameras[0].id, 'top');
    assert.ok(lstatSync(path.join(box, 'boot/rigcam.txt.applied')).isFile());
  });
});
