import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import path from 'node:path';
import { freePort } from './free-port.ts';

/** An sshd of its own on a free loopback port, root logging in with a key made here; host key checked by the client. */
export interface LoopbackSshd {
  port: number;
  /** The ssh command line that reaches it (key, known_hosts, port; no prompt). */
  ssh: string;
  /** The client's private key and the known_hosts file naming the server's key (for configs that take them apart). */
  identityFile: string;
  knownHosts: string;
  stop: () => void;
}

/** Why a loopback sshd cannot run here, or null. Tests fail with this reason rather than skip. */
export function sshdMissing(): string | null {
  const missing = ['ssh', 'ssh-keygen', 'rsync', 'sha256sum', 'curl'].filter((c) => spawnSync('sh', ['-c', `command -v ${c}`]).status !== 0);
  if (!existsSync('/usr/sbin/sshd')) missing.push('sshd (openssh-server)');
  if (missing.length) return `missing: ${missing.join(', ')} (.ci/run installs them)`;
  if (process.getuid?.() !== 0) return 'needs root (sshd with its own config, login as root over loopback)';
  return null;
}

async function waitConnect(port: number, timeoutMs: number, log: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = createConnection({ port, host: '127.0.0.1' });
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`sshd did not listen on ${port}: ${log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** `extraConfig`: more sshd_config lines (e.g. `SetEnv HOME=...` for a login with a HOME of its own). */
export async function startLoopbackSshd(dir: string, opts: { extraConfig?: readonly string[] } = {}): Promise<LoopbackSshd> {
  const sshDir = path.join(dir, 'ssh');
  mkdirSync(sshDir, { mode: 0o700, recursive: true });
  for (const key of ['host_key', 'client_key']) spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', key, '-f', path.join(sshDir, key)], { stdio: 'ignore' });
  writeFileSync(path.join(sshDir, 'authorized_keys'), readFileSync(path.join(sshDir, 'client_key.pub')));
  const port = await freePort();
  writeFileSync(
    path.join(sshDir, 'sshd_config'),
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${path.join(sshDir, 'host_key')}`,
      `PidFile ${path.join(sshDir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${path.join(sshDir, 'authorized_keys')}`,
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'Subsystem sftp internal-sftp', // rclone's SFTP remote, ansible's file transfers
      ...(opts.extraConfig ?? []),
      '',
    ].join('\n'),
  );
  const hostPub = readFileSync(path.join(sshDir, 'host_key.pub'), 'utf8').split(' ').slice(0, 2).join(' ');
  writeFileSync(path.join(sshDir, 'known_hosts'), `[127.0.0.1]:${port} ${hostPub}\n`);
  mkdirSync('/run/sshd', { recursive: true });
  const sshd: ChildProcess = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', path.join(sshDir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  sshd.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  await waitConnect(port, 10_000, () => log);
  const ssh = `ssh -p ${port} -i ${path.join(sshDir, 'client_key')} -o UserKnownHostsFile=${path.join(sshDir, 'known_hosts')} -o StrictHostKeyChecking=yes -o BatchMode=yes -o IdentitiesOnly=yes`;
  return { port, ssh, identityFile: path.join(sshDir, 'client_key'), knownHosts: path.join(sshDir, 'known_hosts'), stop: () => void sshd.kill() };
}
