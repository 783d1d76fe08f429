import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { parseConfig } from '../../src/config/load.ts';
import { startLoopbackSshd, type LoopbackSshd } from '../helpers/loopback-sshd.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { makeFakeRelease } from './fake-release.ts';
import { skipUnlessCi } from '../helpers/requires.ts';
import { freePort } from '../helpers/free-port.ts';

/**
 * The ansible playbook, run for real over SSH against this machine: an sshd started here on a free
 * loopback port, with a host key and a client key made here. Two "boxes" (box1, box2) are two
 * prefix folders on this machine; apt/user/systemctl are off (rigcam_manage_system: false), the
 * service is (re)started by a stand-in for `systemctl restart` and is a small stand-in server that
 * answers /api/health and /api/status, so the rollout logic runs against real HTTP.
 *
 * Root logs in with a HOME of its own under the test folder (sshd's SetEnv): bash sources ~/.bashrc
 * for every command over SSH, and a developer's (pyenv init: ~1 s) ran for each of the role's tasks.
 */

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const ansibleDir = path.join(repo, 'ansible');
const TOKEN_1 = 'box1-token-0123456789abcdef';

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function whyNot(): string | null {
  const missing = ['ansible-playbook', 'ssh', 'ssh-keygen', 'python3'].filter((c) => !has(c));
  if (!existsSync('/usr/sbin/sshd')) missing.push('sshd (openssh-server)');
  if (missing.length) return `missing: ${missing.join(', ')} (apt-get install ansible openssh-server)`;
  if (process.getuid?.() !== 0) return 'needs root (sshd with its own config, login as root over loopback)';
  return null;
}

interface Recap {
  ok: number;
  changed: number;
  failed: number;
  skipped: number;
}

interface PlayResult {
  status: number | null;
  output: string;
  recap: Map<string, Recap>;
}

function recapOf(output: string): Map<string, Recap> {
  const recap = new Map<string, Recap>();
  for (const m of output.matchAll(/^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=\d+\s+failed=(\d+)\s+skipped=(\d+)/gm)) {
    recap.set(m[1], { ok: Number(m[2]), changed: Number(m[3]), failed: Number(m[4]), skipped: Number(m[5]) });
  }
  return recap;
}

/** GET on a fresh connection (no keep-alive reuse across playbook runs that restart servers). */
function getJson(port: number, route: string, token?: string): Promise<Record<string, unknown>> {
  const headers = token ? { authorization: `Bearer ${token}` } : {};
  return new Promise((resolve, reject) => {
    const req = httpGet({ host: '127.0.0.1', port, path: route, agent: false, timeout: 5000, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        if (res.statusCode !== 200) reject(new Error(`GET ${route} on ${port}: ${res.statusCode}`));
        else resolve(JSON.parse(body) as Record<string, unknown>);
      });
    });
    req.on('error', (err) => reject(new Error(`GET ${route} on ${port}: ${err.message}`)));
  });
}

const reason = whyNot();

describe('ansible rollout against loopback', { skip: skipUnlessCi(reason) }, () => {
  let dir = '';
  let sshd: LoopbackSshd | null = null;
  const box = (name: string) => path.join(dir, name);
  const ports = { box1: 0, box2: 0 };
  let inventory = '';
  const releases: Record<string, string> = {};

  const servicePid = (name: string): number | null => {
    const f = path.join(box(name), 'run/rigcam.pid');
    return existsSync(f) ? Number(readFileSync(f, 'utf8')) : null;
  };

  // Registered before tmpDir's cleanup runs (hooks run in order): stop the stand-in services and sshd.
  after(() => {
    for (const name of ['box1', 'box2']) {
      const pid = servicePid(name);
      if (pid) {
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          /* already gone */
        }
      }
    }
    // ansible's ssh ControlPersist masters would otherwise linger (and keep this test file running).
    const cp = path.join(dir, 'cp');
    if (dir && existsSync(cp)) {
      for (const sock of readdirSync(cp)) spawnSync('ssh', ['-o', `ControlPath=${path.join(cp, sock)}`, '-O', 'exit', '127.0.0.1'], { stdio: 'ignore' });
    }
    sshd?.stop();
  });
  dir = reason ? '' : tmpDir('rigcam-ansible-');

  function playbook(version: string, extra: string[] = []): PlayResult {
    const res = spawnSync(
      'ansible-playbook',
      ['-i', inventory, 'site.yml', '-e', `rigcam_release_tarball=${releases[version]}`, ...extra],
      {
        cwd: ansibleDir,
        encoding: 'utf8',
        timeout: 400_000, // a playbook over loopback SSH: ~1 min alone, several when the suite runs beside it
        env: {
          ...process.env,
          ANSIBLE_CONFIG: path.join(ansibleDir, 'ansible.cfg'),
          ANSIBLE_LOCAL_TEMP: path.join(dir, 'ansible-tmp'),
          ANSIBLE_SSH_CONTROL_PATH_DIR: path.join(dir, 'cp'),
          ANSIBLE_NOCOLOR: '1',
          ANSIBLE_FORCE_COLOR: '0',
        },
      },
    );
    const output = res.stdout + res.stderr;
    writeFileSync(path.join(dir, `play-${version}-${Date.now()}.log`), output);
    return { status: res.status, output, recap: recapOf(output) };
  }

  before(async () => {
    const home = path.join(dir, 'home');
    mkdirSync(home, { mode: 0o700 });
    // Host key checking stays on: the known_hosts file holds the key the helper made.
    sshd = await startLoopbackSshd(dir, { extraConfig: [`SetEnv HOME=${home}`] });
    const sshPort = sshd.port;

    // Stand-ins for systemd. `systemctl restart rigcam` (Type=notify): stop the running service, start
    // current/bin/rigcam.js serve, wait until it listens (ready) or dies. A start that dies leaves the unit
    // failed at its start limit (the real unit: 5 quick failures), and every later start is refused until
    // `systemctl reset-failed rigcam` (the second script) clears it.
    const restart = path.join(dir, 'restart.sh');
    writeFileSync(
      restart,
      `#!/bin/bash
set -eu
p="$1"
mkdir -p "$p/run"
if [ -e "$p/run/start-limit-hit" ]; then
  echo "Job for rigcam.service failed: start request repeated too quickly (start-limit-hit); see systemctl reset-failed" >&2
  exit 1
fi
if [ -f "$p/run/rigcam.pid" ]; then
  pid="$(cat "$p/run/rigcam.pid")"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
fi
port="$(sed -n 's/^ *port: *\\([0-9]*\\)$/\\1/p' "$p/etc/rigcam/rigcam.yaml" | head -n 1)"
RIGCAM_CONFIG="$p/etc/rigcam/rigcam.yaml" setsid "${process.execPath}" "$p/opt/rigcam/current/bin/rigcam.js" serve >>"$p/run/rigcam.log" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$p/run/rigcam.pid"
for _ in $(seq 600); do
  if ! kill -0 "$pid" 2>/dev/null; then
    touch "$p/run/start-limit-hit"
    echo "rigcam.service: main process exited at start; start limit hit" >&2
    exit 1
  fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then exit 0; fi
  sleep 0.1
done
echo "rigcam.service: not ready after 60 s" >&2
exit 1
`,
      { mode: 0o755 },
    );
    const resetFailed = path.join(dir, 'reset-failed.sh');
    writeFileSync(resetFailed, '#!/bin/sh\nrm -f "$1/run/start-limit-hit"\n', { mode: 0o755 });

    ports.box1 = await freePort();
    ports.box2 = await freePort();
    inventory = path.join(dir, 'inventory.yml');
    writeFileSync(
      inventory,
      JSON.stringify({
        all: {
          children: {
            rigcam: {
              vars: {
                ansible_host: '127.0.0.1',
                ansible_port: sshPort,
                ansible_user: 'root',
                ansible_become: false,
                ansible_ssh_private_key_file: sshd.identityFile,
                ansible_ssh_common_args: `-o UserKnownHostsFile=${sshd.knownHosts} -o StrictHostKeyChecking=yes`,
                ansible_python_interpreter: '/usr/bin/python3',
                rigcam_manage_system: false,
                rigcam_npm_ci: false,
                rigcam_node: process.execPath,
                rigcam_service_restart_command: `${restart} {{ rigcam_prefix }}`,
                rigcam_service_reset_failed_command: `${resetFailed} {{ rigcam_prefix }}`,
                rigcam_recording_wait_seconds: 2,
                rigcam_recording_poll_seconds: 1,
                rigcam_health_retries: 4,
                rigcam_health_delay: 1,
              },
              hosts: {
                box1: {
                  rigcam_prefix: box('box1'),
                  rigcam_http_port: ports.box1,
                  rigcam_http_token: TOKEN_1,
                  rigcam_doctor_user: 'root', // through runuser, as with the service's user on a real box
                  rigcam_cameras: [{ id: 'top', source: 'v4l2', device: '/dev/v4l/by-id/usb-cam-video-index0', input_format: 'mjpeg', fps: 60 }],
                  rigcam_gpio_config: { inputs: [{ line: 17, mode: 'level', active_low: true }], outputs: { recording: { line: 27 } } },
                  rigcam_serial_config: { enabled: true, path: '/dev/serial/by-id/usb-Arduino-if00', baud: 57600 },
                },
                box2: {
                  rigcam_prefix: box('box2'),
                  rigcam_http_port: ports.box2,
                  rigcam_cameras: [{ id: 'side', source: 'test' }],
                  rigcam_extra_config: { recording: { preroll_seconds: 2 } },
                },
              },
            },
          },
        },
      }),
    );

    // `rigcam doctor` in these releases is the real one, on what looks like a Pi with a CSI camera and the
    // rpicam-apps-lite build (the rpicam stand-ins): the finding a lab installing by Ansible must see.
    const csiLite = {
      PATH: path.join(repo, 'test/standins'),
      RIGCAM_RPICAM_FIXTURE: path.join(repo, 'hw-fixtures/rpicam/pi4-imx708-wide/list-cameras.txt'),
      RIGCAM_RPICAM_VERSION: path.join(repo, 'hw-fixtures/rpicam-vid/version-v1.5.2-lite.txt'),
    };
    releases['1.0.0'] = makeFakeRelease(dir, '1.0.0', { doctorEnv: csiLite });
    releases['1.1.0'] = makeFakeRelease(dir, '1.1.0', { doctorEnv: csiLite });
    releases['1.2.0'] = makeFakeRelease(dir, '1.2.0', { broken: true });
  });

  it('passes ansible-lint', { skip: skipUnlessCi(!has('ansible-lint') && 'ansible-lint is not installed') }, () => {
    const res = spawnSync('ansible-lint', ['--offline', '--nocolor'], { cwd: ansibleDir, encoding: 'utf8', env: { ...process.env, ANSIBLE_LOCAL_TEMP: path.join(dir, 'lint-tmp') } });
    assert.equal(res.status, 0, res.stdout + res.stderr);
  });

  it('installs release 1.0.0 on both boxes and starts them', async () => {
    const run = playbook('1.0.0');
    assert.equal(run.status, 0, run.output);
    for (const name of ['box1', 'box2'] as const) {
      const r = run.recap.get(name);
      assert.ok(r && r.changed > 0 && r.failed === 0, `${name}: ${JSON.stringify(r)}`);
      const prefix = box(name);
      assert.equal(readlinkSync(path.join(prefix, 'opt/rigcam/current')), 'releases/1.0.0');
      assert.ok(existsSync(path.join(prefix, 'opt/rigcam/releases/1.0.0/dist/cli/main.js')));
      assert.equal(readFileSync(path.join(prefix, 'etc/systemd/system/rigcam.service'), 'utf8'), readFileSync(path.join(repo, 'deploy/systemd/rigcam.service'), 'utf8'));
      const dropin = readFileSync(path.join(prefix, 'etc/systemd/system/rigcam.service.d/10-paths.conf'), 'utf8');
      assert.match(dropin, new RegExp(`^ReadWritePaths=${prefix}/var/lib/rigcam ${prefix}/var/lib/rigcam/recordings$`, 'm'));
      assert.ok(existsSync(path.join(prefix, 'var/lib/rigcam/recordings')));
      assert.equal((await getJson(ports[name], '/api/health', name === 'box1' ? TOKEN_1 : undefined)).version, '1.0.0');
    }
    // Per-host config, accepted by the project's real schemas.
    const cfg1 = parseConfig(parse(readFileSync(path.join(box('box1'), 'etc/rigcam/rigcam.yaml'), 'utf8')));
    assert.equal(cfg1.http.token, TOKEN_1);
    assert.equal(cfg1.http.host, '0.0.0.0', 'a token opens the API to the network');
    assert.equal(cfg1.http.port, ports.box1);
    assert.equal(cfg1.cameras[0].device, '/dev/v4l/by-id/usb-cam-video-index0');
    assert.equal(cfg1.data_dir, `${box('box1')}/var/lib/rigcam`);
    assert.equal(cfg1.gpio.inputs[0].bias, 'pull-up');
    assert.equal(cfg1.gpio.outputs.recording?.line, 27);
    assert.equal(cfg1.serial.path, '/dev/serial/by-id/usb-Arduino-if00');
    assert.equal(cfg1.serial.baud, 57600);
    const cfg2 = parseConfig(parse(readFileSync(path.join(box('box2'), 'etc/rigcam/rigcam.yaml'), 'utf8')));
    assert.equal(cfg2.http.host, '127.0.0.1');
    assert.equal(cfg2.http.token, null);
    assert.equal(cfg2.recording.preroll_seconds, 2);
    assert.equal(cfg2.cameras[0].source, 'test');

    // After the activation each box ran the real `rigcam doctor`, read-only, and the play printed its findings
    // (this rpicam-apps build cannot serve) without failing for them.
    for (const name of ['box1', 'box2']) {
      const data = path.join(box(name), 'var/lib/rigcam');
      const calls = readFileSync(path.join(data, 'doctor-calls.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { args: string[]; config: string });
      assert.deepEqual(calls.map((c) => [c.args, c.config]), [[['doctor'], path.join(box(name), 'etc/rigcam/rigcam.yaml')]], 'once, without --save, on the box\'s config');
      assert.equal(existsSync(path.join(data, 'doctor.txt')), false, 'read-only: no report written');
      assert.match(run.output, new RegExp(`rigcam doctor on ${name}: [1-9][0-9]* failed, [0-9]+ warnings \\(rigcam records, but not all it is set up for`));
    }
    const csiFindings = run.output.match(/"FAIL rpicam-apps: rpicam-vid v1\.5\.2, libcamera [^"]*does not report frame capture times[^"]*sudo apt install rpicam-apps \(the build with libav output; replaces rpicam-apps-lite\)"/g) ?? [];
    assert.equal(csiFindings.length, 2, `the CSI finding printed for both boxes:\n${run.output}`);
    assert.match(run.output, /"OK  cameras: 1 found: CSI imx708_wide \(camera 0\)"/);
  });

  it('a second run changes nothing and restarts nothing', () => {
    const pids = [servicePid('box1'), servicePid('box2')];
    const run = playbook('1.0.0');
    assert.equal(run.status, 0, run.output);
    for (const name of ['box1', 'box2']) {
      const r = run.recap.get(name);
      assert.ok(r, `no recap for ${name}:\n${run.output}`);
      assert.equal(r.changed, 0, `${name} changed on the second run:\n${run.output}`);
      assert.equal(r.failed, 0);
      const calls = readFileSync(path.join(box(name), 'var/lib/rigcam/doctor-calls.log'), 'utf8').trim().split('\n');
      assert.equal(calls.length, 1, 'no activation, no doctor run');
    }
    assert.deepEqual([servicePid('box1'), servicePid('box2')], pids);
  });

  it('never restarts a recording box: it waits, then leaves it and says so', async () => {
    writeFileSync(path.join(box('box1'), 'var/lib/rigcam/recording'), '');
    const pid1 = servicePid('box1');
    const run = playbook('1.1.0');
    assert.equal(run.status, 0, run.output);
    assert.match(run.output, /box1 is still recording after 2 s: NOT restarted\. rigcam 1\.1\.0 is unpacked but not activated \(live: 1\.0\.0\)/);
    assert.equal(servicePid('box1'), pid1, 'box1 kept running');
    assert.equal(readlinkSync(path.join(box('box1'), 'opt/rigcam/current')), 'releases/1.0.0');
    assert.ok(existsSync(path.join(box('box1'), 'opt/rigcam/releases/1.1.0/bin/rigcam.js')), 'the new release is ready for next time');
    assert.equal((await getJson(ports.box1, '/api/status', TOKEN_1)).version, '1.0.0');
    // box2 is not recording: updated.
    assert.equal(readlinkSync(path.join(box('box2'), 'opt/rigcam/current')), 'releases/1.1.0');
    assert.equal((await getJson(ports.box2, '/api/health')).version, '1.1.0');
  });

  // Only a refused connection (service not running) means "not recording". Every other answer cannot
  // tell, so the box is neither restarted nor switched, and the play fails for it with the reason.
  const answerBadly = (name: string, answer: string | null): void => {
    const f = path.join(box(name), 'var/lib/rigcam/status-answer');
    if (answer === null) rmSync(f, { force: true });
    else writeFileSync(f, answer);
  };
  const assertLeftAlone = (run: PlayResult, name: string, pid: number | null, live: string, why: RegExp): void => {
    assert.match(run.output, new RegExp(`cannot tell whether ${name} is recording: /api/status ${why.source}\\.\\s+NOT restarted; rigcam \\S+ is unpacked but not activated\\s+\\(live: ${live.replaceAll('.', '\\.')}\\)`), run.output);
    assert.equal(run.recap.get(name)?.failed, 1, `${name}: ${JSON.stringify(run.recap.get(name))}`);
    assert.equal(servicePid(name), pid, `${name} kept running`);
    assert.equal(readlinkSync(path.join(box(name), 'opt/rigcam/current')), `releases/${live}`);
  };

  it('never restarts a box whose status it cannot read (401 after a token change, a body that is not JSON): fails loudly instead', async () => {
    // box1 is still recording, but the play now carries another token than the box: /api/status answers 401.
    // box2 (no token on the box, so it ignores the header) answers 200 with a JSON content type and a broken body.
    // Both boxes are in one batch, so both are asked and both fail.
    const pids = { box1: servicePid('box1'), box2: servicePid('box2') };
    answerBadly('box2', 'garbage');
    const run = playbook('1.1.0', ['-e', 'rigcam_http_token=another-token-0123456789']);
    assert.notEqual(run.status, 0, `an unknown recording state must fail the play:\n${run.output}`);
    assertLeftAlone(run, 'box1', pids.box1, '1.0.0', /answered 401 \(HTTP Error 401: Unauthorized\)/);
    assertLeftAlone(run, 'box2', pids.box2, '1.1.0', /answered 200 without a true\/false recording field/);
    assert.equal((await getJson(ports.box1, '/api/status', TOKEN_1)).version, '1.0.0');
  });

  it('fails closed on a 5xx and on a time-out', async () => {
    releases['1.3.0'] = makeFakeRelease(dir, '1.3.0');
    const pids = { box1: servicePid('box1'), box2: servicePid('box2') };
    answerBadly('box1', 'hang');
    answerBadly('box2', '500');
    const run = playbook('1.3.0');
    answerBadly('box1', null);
    answerBadly('box2', null);
    assert.notEqual(run.status, 0, run.output);
    assertLeftAlone(run, 'box1', pids.box1, '1.0.0', /did not answer \([^)]*timed out[^)]*\)/);
    assertLeftAlone(run, 'box2', pids.box2, '1.1.0', /answered 500 \(HTTP Error 500: Internal Server Error\)/);
    assert.equal((await getJson(ports.box2, '/api/health')).version, '1.1.0');
  });

  it('updates the box it left alone once it is idle, and nothing else', async () => {
    rmSync(path.join(box('box1'), 'var/lib/rigcam/recording'));
    const pids = { box1: servicePid('box1'), box2: servicePid('box2') };
    const run = playbook('1.1.0');
    assert.equal(run.status, 0, run.output);
    assert.equal(readlinkSync(path.join(box('box1'), 'opt/rigcam/current')), 'releases/1.1.0');
    assert.notEqual(servicePid('box1'), pids.box1, 'box1 restarted into 1.1.0');
    assert.equal((await getJson(ports.box1, '/api/health', TOKEN_1)).version, '1.1.0');
    assert.equal(run.recap.get('box2')?.changed, 0, run.output);
    assert.equal(servicePid('box2'), pids.box2);
  });

  it('rolls a box back when the new release fails its health check, and stops the rollout', async () => {
    const pid2 = servicePid('box2');
    const run = playbook('1.2.0', ['-e', 'rigcam_batch_size=1']);
    assert.notEqual(run.status, 0, 'a failed box fails the play');
    // The broken start left the (stand-in) unit at its start limit: the rollback clears it, or the
    // previous release could not start either.
    assert.match(run.output, /rigcam 1\.2\.0 failed its health check on box1\.\s+Rolled back to 1\.1\.0, which is\s+healthy\./);
    assert.equal(run.recap.get('box1')?.failed, 1);
    assert.equal(readlinkSync(path.join(box('box1'), 'opt/rigcam/current')), 'releases/1.1.0');
    assert.equal((await getJson(ports.box1, '/api/health', TOKEN_1)).version, '1.1.0');
    assert.ok(!existsSync(path.join(box('box1'), 'run/start-limit-hit')), 'the failed state was cleared');
    // max_fail_percentage 0 with one box per batch: box2 is never touched.
    assert.equal(run.recap.get('box2'), undefined, 'box2 was not in the play');
    assert.equal(servicePid('box2'), pid2);
    assert.equal(readlinkSync(path.join(box('box2'), 'opt/rigcam/current')), 'releases/1.1.0');
  });
});
