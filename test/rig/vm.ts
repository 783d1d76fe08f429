import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../helpers/free-port.ts';

/**
 * The virtual rig: a Debian trixie guest (scripts/rig/build-image.sh) booted in qemu-system-x86_64
 * with real devices (vivid camera, gpio-sim header, a 16550 UART) and reachable only through
 * loopback port forwards (user networking with restrict=on: the guest reaches nothing outside).
 * Each boot runs on a qcow2 overlay of the cached image, so the image stays pristine and a
 * "power cut" (SIGKILL of qemu) followed by another boot of the same overlay sees exactly what the
 * guest had put on its disk.
 */

export const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface RigImage {
  dir: string;
  disk: string;
  kernel: string;
  initrd: string;
  key: string;
  hostKeyPub: string;
  kernelVersion: string;
}

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Why the rig cannot run here, or null. The rig never skips: callers fail with this. */
export function rigPrerequisiteProblem(): string | null {
  const missing = ['qemu-system-x86_64', 'qemu-img', 'mmdebstrap', 'mkfs.ext4', 'ssh', 'ansible-playbook', 'ffprobe'].filter((c) => !has(c));
  if (missing.length) return `the virtual rig needs: ${missing.join(', ')} (apt-get install qemu-system-x86 qemu-utils mmdebstrap e2fsprogs openssh-client ansible ffmpeg)`;
  if (process.getuid?.() !== 0) return 'the virtual rig must run as root (mmdebstrap, chroot, mkfs)';
  return null;
}

/** Builds the image (or finds it in the cache) and returns its files. */
export async function ensureImage(): Promise<RigImage> {
  const problem = rigPrerequisiteProblem();
  if (problem) throw new Error(problem);
  const t0 = Date.now();
  const res = await runScript('bash', [path.join(repo, 'scripts/rig/build-image.sh')], { timeoutMs: 40 * 60_000 });
  if (res.status !== 0) throw new Error(`scripts/rig/build-image.sh failed (${res.status ?? res.signal}):\n${res.stderr.slice(-8000)}`);
  const dir = res.stdout.trim().split('\n').pop()!;
  logTiming('image', Date.now() - t0, existsSync(path.join(dir, 'build-seconds')) ? `built in ${readFileSync(path.join(dir, 'build-seconds'), 'utf8').trim()} s` : '');
  return {
    dir,
    disk: path.join(dir, 'disk.img'),
    kernel: path.join(dir, 'vmlinuz'),
    initrd: path.join(dir, 'initrd.img'),
    key: path.join(dir, 'id_ed25519'),
    hostKeyPub: readFileSync(path.join(dir, 'ssh_host_ed25519_key.pub'), 'utf8').split(' ').slice(0, 2).join(' '),
    kernelVersion: readFileSync(path.join(dir, 'kernel-version'), 'utf8').trim(),
  };
}

/**
 * A build script run without blocking the event loop, so the image and the offline release build side by side
 * (one mostly downloads and unpacks, the other compiles): about 100 s off the rig's set-up from nothing.
 */
export function runScript(
  cmd: string,
  args: string[],
  opts: { timeoutMs: number; env?: NodeJS.ProcessEnv; cwd?: string },
): Promise<{ status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'], timeout: opts.timeoutMs, killSignal: 'SIGTERM' });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status, signal) => resolve({ status, signal, stdout, stderr }));
  });
}

/** One line per measured step on stderr (and in $RIG_TIMINGS when set), so runs can be compared. */
export function logTiming(what: string, ms: number, note = ''): void {
  const line = `rig timing: ${what} ${(ms / 1000).toFixed(1)} s${note ? ` (${note})` : ''}`;
  process.stderr.write(line + '\n');
  if (process.env.RIG_TIMINGS) writeFileSync(process.env.RIG_TIMINGS, line + '\n', { flag: 'a' });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * The first Oops or panic line of a boot's console when the kernel panicked before it started any user space
 * (no "Run /init" yet: not even the initramfs ran, so nothing on the disk or of rigcam was involved); else null.
 */
export function panicBeforeUserSpace(bootConsole: string): string | null {
  const panicAt = bootConsole.indexOf('Kernel panic - not syncing');
  if (panicAt < 0) return null;
  const init = /Run \S+ as init process/.exec(bootConsole);
  if (init && init.index < panicAt) return null;
  const first = /^.*(?:Oops|BUG|Kernel panic)[^\n]*/m.exec(bootConsole)?.[0] ?? 'Kernel panic';
  return first.replace(/^\[\s*[\d.]+\]\s*/, '').trim();
}

export interface SshResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export class RigVm {
  readonly work: string;
  readonly overlay: string;
  readonly consoleLog: string;
  readonly serialSock: string;
  readonly knownHosts: string;
  sshPort = 0;
  httpPort = 0;
  private qemu: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  private qemuLog = '';
  boots = 0;
  private attachedVm = false;

  constructor(
    readonly image: RigImage,
    work: string,
    attached?: { ssh: number; http: number },
  ) {
    this.work = work;
    mkdirSync(work, { recursive: true });
    this.overlay = path.join(work, 'overlay.qcow2');
    this.consoleLog = path.join(work, 'console.log');
    this.serialSock = path.join(work, 'ttyS1.sock');
    this.knownHosts = path.join(work, 'known_hosts');
    if (attached) {
      this.attachedVm = true;
      this.sshPort = attached.ssh;
      this.httpPort = attached.http;
      return;
    }
    const res = spawnSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', image.disk, this.overlay], { encoding: 'utf8' });
    if (res.status !== 0) throw new Error(`qemu-img create: ${res.stderr}`);
  }

  /**
   * A VM that test/rig/shell.ts keeps running (RIG_ATTACH, printed by it): scenarios run against it without a
   * boot and an install, to develop them. Not for CI: a power cut cannot be simulated on it.
   */
  static attached(image: RigImage): RigVm | null {
    const spec = process.env.RIG_ATTACH;
    if (!spec) return null;
    const { work, ssh, http } = JSON.parse(spec) as { work: string; ssh: number; http: number };
    return new RigVm(image, work, { ssh, http });
  }

  /**
   * Boots the overlay and waits for sshd. Ports are chosen on the first boot and kept. A guest kernel that panics
   * before user space (seen once in CI: an `int3` Oops in sched_clock_cpu 2.4 s into boot, the kind of fault TCG's
   * emulation of the kernel patching its own code on SMP can raise) is booted once more: nothing of rigcam runs
   * yet, and for the disk it is one more power cut. A second panic, or any other exit, fails the boot.
   */
  async boot(timeoutMs = Number(process.env.RIG_BOOT_TIMEOUT_S ?? 900) * 1000): Promise<void> {
    if (!this.sshPort) {
      this.sshPort = await freePort();
      this.httpPort = await freePort();
      writeFileSync(this.knownHosts, `[127.0.0.1]:${this.sshPort} ${this.image.hostKeyPub}\n`);
    }
    this.boots++;
    const t0 = Date.now();
    const deadline = t0 + timeoutMs;
    for (let attempt = 1; ; attempt++) {
      const consoleFrom = this.console().length;
      const q = this.startQemu();
      const up = await this.waitForSsh(q, deadline, timeoutMs);
      if (up) break;
      const panic = panicBeforeUserSpace(this.console().slice(consoleFrom));
      if (panic && attempt === 1) {
        logTiming(`boot ${this.boots}: the guest kernel panicked before user space (${panic}), booting again`, Date.now() - t0);
        continue;
      }
      throw new Error(`qemu exited during boot (${q.exitCode ?? q.signalCode}): ${this.qemuLog}\n${this.console().slice(-4000)}`);
    }
    logTiming(`boot ${this.boots} to sshd`, Date.now() - t0);
  }

  private startQemu(): ChildProcess {
    const accel = process.env.RIG_ACCEL ?? 'tcg';
    // `max` (every feature TCG can emulate, SSE4/AVX2/AES among them) rather than the default qemu64: Python, Node
    // and ssh take their vector paths, measured here 30-50 % faster under TCG (an Ansible module ~0.8 s, not ~1.5).
    const args = [
      '-nodefaults', '-display', 'none', '-no-reboot',
      '-accel', accel, '-m', '1536', '-smp', '2', '-cpu', process.env.RIG_CPU ?? 'max',
      '-kernel', this.image.kernel, '-initrd', this.image.initrd,
      '-append', 'root=/dev/vda rw console=ttyS0,115200 panic=-1 systemd.show_status=false',
      '-drive', `file=${this.overlay},if=virtio,format=qcow2,cache=writeback`,
      '-netdev', `user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:${this.sshPort}-:22,hostfwd=tcp:127.0.0.1:${this.httpPort}-:8080`,
      '-device', 'virtio-net-pci,netdev=n0',
      '-device', 'virtio-rng-pci',
      // ttyS0: the console, appended to a file; ttyS1: the lab's serial cable, a socket the test holds.
      '-chardev', `file,id=con,path=${this.consoleLog},append=on`, '-serial', 'chardev:con',
      '-chardev', `socket,id=uart1,path=${this.serialSock},server=on,wait=off`, '-serial', 'chardev:uart1',
    ];
    // Ahead of whatever else runs on the host (as root): a starved guest misses its watchdog and its frames'
    // deadlines, which is the host's load, not rigcam's behaviour. nice execs qemu, so the pid is qemu's.
    const q = spawn('nice', ['-n', '-5', 'qemu-system-x86_64', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.qemu = q;
    q.stdout!.on('data', (d: Buffer) => (this.qemuLog += d.toString()));
    q.stderr!.on('data', (d: Buffer) => (this.qemuLog += d.toString()));
    this.exited = new Promise((resolve) => q.once('exit', () => resolve()));
    const killOnExit = () => void q.kill('SIGKILL');
    process.once('exit', killOnExit);
    q.once('exit', () => process.removeListener('exit', killOnExit));
    return q;
  }

  /** True once sshd answers; false if qemu exited first. Throws at the deadline. */
  private async waitForSsh(q: ChildProcess, deadline: number, timeoutMs: number): Promise<boolean> {
    for (;;) {
      if (q.exitCode !== null || q.signalCode !== null) return false;
      const r = await this.ssh('true', { timeoutMs: 15_000, connectTimeout: 3 });
      if (r.code === 0) return true;
      if (Date.now() > deadline) throw new Error(`no ssh after ${timeoutMs} ms:\n${r.stderr}\n${this.console().slice(-4000)}`);
      await sleep(1000);
    }
  }

  get running(): boolean {
    if (this.attachedVm) return true;
    return this.qemu !== null && this.qemu.exitCode === null && this.qemu.signalCode === null;
  }

  /** Power cut: qemu is killed, the guest's page cache and unflushed writes are gone. */
  async powerCut(): Promise<void> {
    this.qemu?.kill('SIGKILL');
    await this.exited;
    this.qemu = null;
  }

  /** Teardown: nothing on the guest needs to survive, so it is cut as well. */
  async destroy(): Promise<void> {
    await this.powerCut();
  }

  console(): string {
    return existsSync(this.consoleLog) ? readFileSync(this.consoleLog, 'utf8') : '';
  }

  sshArgs(connectTimeout = 10): string[] {
    return [
      '-i', this.image.key, '-p', String(this.sshPort),
      '-o', `UserKnownHostsFile=${this.knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes',
      '-o', `ConnectTimeout=${connectTimeout}`, '-o', 'LogLevel=ERROR', '-o', 'ServerAliveInterval=5',
    ];
  }

  /** Runs a shell command on the guest as root. */
  ssh(command: string, opts: { timeoutMs?: number; connectTimeout?: number; input?: string } = {}): Promise<SshResult> {
    return new Promise((resolve) => {
      const child = spawn('ssh', [...this.sshArgs(opts.connectTimeout), 'root@127.0.0.1', command], { stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const timer = setTimeout(() => {
        stderr += `\n(ssh timed out after ${opts.timeoutMs ?? 120_000} ms)`;
        child.kill('SIGKILL');
      }, opts.timeoutMs ?? 120_000);
      child.once('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
      child.stdin.end(opts.input ?? '');
    });
  }

  /** Like ssh() but throws on a non-zero exit, with the output in the message. */
  async run(command: string, opts: { timeoutMs?: number; input?: string } = {}): Promise<string> {
    const r = await this.ssh(command, opts);
    if (r.code !== 0) throw new Error(`guest: \`${command}\` exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  }

  /** The guest's journal (this boot, or all boots) and console tail: printed when a scenario fails. */
  async diagnostics(allBoots = false): Promise<string> {
    let journal = '(guest not running)';
    if (this.running) {
      const r = await this.ssh(`journalctl ${allBoots ? '' : '-b'} --no-pager -o short-monotonic -n 400`, { timeoutMs: 30_000 });
      journal = r.stdout + r.stderr;
    }
    return `===== guest journal (last 400 lines) =====\n${journal}\n===== guest console (tail) =====\n${this.console().slice(-6000)}\n===== qemu =====\n${this.qemuLog}`;
  }

  /** Connects to the guest's ttyS1 (the socket is the host end of the null-modem cable). */
  openSerial(): Promise<SerialLine> {
    return new Promise((resolve, reject) => {
      const s = connect(this.serialSock);
      s.once('connect', () => resolve(new SerialLine(s)));
      s.once('error', reject);
    });
  }
}

/** The host end of the guest's ttyS1: writes lines, collects the answers. */
export class SerialLine {
  private buf = '';
  constructor(private readonly sock: Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => (this.buf += d));
  }

  send(line: string): void {
    this.sock.write(line + '\r\n');
  }

  /** Waits for an answer line matching `re` that arrived since the last call, and consumes up to it. */
  async expect(re: RegExp, timeoutMs = 15_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const lines = this.buf.split(/\r?\n/);
      const i = lines.findIndex((l) => re.test(l));
      if (i >= 0 && i < lines.length - 1) {
        this.buf = lines.slice(i + 1).join('\n');
        return lines[i];
      }
      if (Date.now() > deadline) throw new Error(`serial: no line matching ${re} after ${timeoutMs} ms; got: ${JSON.stringify(this.buf)}`);
      await sleep(50);
    }
  }

  close(): void {
    this.sock.destroy();
  }
}
