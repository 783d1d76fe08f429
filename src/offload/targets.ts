import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Logger } from '../log/logger.ts';
import { ChildSupervisor, type ChildSpec } from '../supervise/child-supervisor.ts';
import { runOnce } from '../supervise/run-once.ts';
import type { OffloadConfig, OffloadTarget } from './config.ts';

/**
 * Where push offload copies to, as commands: a copy (run supervised, stopped when a trial starts), the remote
 * file's SHA-256 (what makes a copy count), and removing a bad copy. Every name reaches the remote side as one
 * argument: rsync with --protect-args (no remote shell splitting), ssh commands single-quoted, rclone by argv.
 */
export interface OffloadTransport {
  /** For status and logs: `rsync user@host:/path/box`, `rclone remote:path/box`. */
  readonly describe: string;
  /** rsync | rclone: the copy runs under ionice and nice, so its exit names them; messages name the tool. */
  readonly tool: string;
  /** The copy of one file (absolute local path, path relative to the recordings root), nice'd and ionice'd. */
  copySpec(local: string, rel: string): ChildSpec;
  /** Each remote copy's SHA-256 by relative path (null when it is not there); throws when the remote cannot be asked. */
  remoteSha256(files: ReadonlyArray<{ rel: string; bytes: number }>): Promise<Map<string, string | null>>;
  /** Remove a remote copy that did not verify, so the next try sends it again whole. */
  removeRemote(rel: string): Promise<void>;
  /** Before a run of copies (one ssh login shared by them), and after it. */
  open(): Promise<void>;
  close(): Promise<void>;
}

/** One POSIX shell word, whatever the string holds (spaces, quotes, commas, `$`). */
export function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Low priority on the box: the SD card and CPU belong to the next recording. */
function lowPriority(command: string, args: string[]): Pick<ChildSpec, 'command' | 'args'> {
  return { command: 'ionice', args: ['-c3', 'nice', '-n', '19', command, ...args] };
}

/** Time allowed to hash a remote file: generous (a slow server disk), never unbounded. */
function hashTimeoutMs(bytes: number): number {
  return 60_000 + Math.ceil(bytes / (10 * 1024 * 1024)) * 1000;
}

function firstLine(s: string): string {
  return s.split('\n').map((l) => l.trim()).filter(Boolean).slice(-1)[0] ?? '';
}

export function makeTransport(target: OffloadTarget, cfg: OffloadConfig, box: string, log: Logger, env?: NodeJS.ProcessEnv): OffloadTransport {
  return target.type === 'rsync' ? rsyncTransport(target, cfg, box, log, env) : rcloneTransport(target, cfg, box, env);
}

function rsyncTransport(t: Extract<OffloadTarget, { type: 'rsync' }>, cfg: OffloadConfig, box: string, log: Logger, env?: NodeJS.ProcessEnv): OffloadTransport {
  const base = path.posix.join(t.path, box);
  const login = t.user ? `${t.user}@${t.host}` : t.host;
  // One ssh connection (a supervised master) carries every copy and check of a run: a login costs seconds on a Pi.
  // Its socket lives in a private folder; without a master (not up yet, died) ssh simply logs in by itself.
  // The folder is made (0700, exclusively) for each run and removed after it.
  const controlDir = path.join(tmpdir(), `rigcam-ssh-${randomBytes(6).toString('hex')}`);
  const socket = path.join(controlDir, 'm');
  let master: ChildSupervisor | null = null;
  // BatchMode: never a password prompt on a box without a terminal.
  const sshArgs = [
    '-p',
    String(t.port),
    ...(t.identity_file ? ['-i', t.identity_file] : []),
    '-o',
    'BatchMode=yes',
    ...t.ssh_options.flatMap((o) => ['-o', o]),
  ];
  const viaMaster = [...sshArgs, '-o', `ControlPath=${socket}`, '-o', 'ControlMaster=no'];
  const remote = (rel: string): string => path.posix.join(base, rel);
  const ssh = async (command: string, timeoutMs: number) => {
    const r = await runOnce('ssh', [...viaMaster, login, '--', command], { timeoutMs, env });
    return { ...r, out: r.stdout.toString('utf8') };
  };
  return {
    describe: `rsync ${login}:${base}`,
    tool: 'rsync',
    copySpec: (local, rel) => ({
      ...lowPriority('rsync', [
        '--protect-args', // names travel inside the protocol, never through the remote shell
        '--partial',
        '--append-verify', // an interrupted copy continues where it stopped (whole-file checksum checked by rsync)
        '--mkpath',
        '--times',
        `--timeout=${cfg.io_timeout_s}`,
        ...(cfg.bwlimit_kbps > 0 ? [`--bwlimit=${cfg.bwlimit_kbps}`] : []),
        '--stats',
        '-e',
        ['ssh', ...viaMaster].join(' '), // options are validated to hold no spaces or quotes
        local,
        `${login}:${remote(rel)}`,
      ]),
      env,
    }),
    async remoteSha256(files) {
      // One ssh login for all the files of a recording (a login costs seconds on a loaded box).
      const bytes = files.reduce((n, f) => n + f.bytes, 0);
      const r = await ssh(`sha256sum -- ${files.map((f) => shQuote(remote(f.rel))).join(' ')}`, hashTimeoutMs(bytes));
      const got = new Map<string, string>();
      for (const line of r.out.split('\n')) {
        const m = /^(\\?)([0-9a-fA-F]{64}) [ *](.*)$/.exec(line);
        // sha256sum escapes a name holding a backslash or line break and marks the line with a leading backslash.
        if (m) got.set(m[1] ? m[3]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c)) : m[3]!, m[2]!.toLowerCase());
      }
      const out = new Map<string, string | null>();
      for (const f of files) {
        const h = got.get(remote(f.rel));
        if (h) out.set(f.rel, h);
        // (coreutils quotes odd names in its messages, so the name is not matched there)
        else if (/No such file or directory/.test(r.stderr)) out.set(f.rel, null);
        else throw new Error(`sha256sum on ${login} failed${r.timedOut ? ' (timed out)' : ''}: ${firstLine(r.stderr) || `exit ${r.code}`}`);
      }
      return out;
    },
    async removeRemote(rel) {
      const r = await ssh(`rm -f -- ${shQuote(remote(rel))}`, 60_000);
      if (r.code !== 0) throw new Error(`removing the bad copy on ${login} failed: ${firstLine(r.stderr) || `exit ${r.code}`}`);
    },
    async open() {
      if (master?.running) return;
      try {
        mkdirSync(controlDir, { mode: 0o700 });
      } catch {
        return; // exists already (not ours to trust): every command logs in by itself
      }
      const args = [...sshArgs, '-o', `ControlPath=${socket}`, '-o', 'ControlMaster=yes', '-o', 'ServerAliveInterval=15', '-N', login];
      const m = new ChildSupervisor({ what: 'offload ssh connection', makeSpec: () => ({ command: 'ssh', args, env }), log, restart: false, stopGraceMs: 2000 });
      master = m;
      m.start();
      // Up to 30 s for the login; the copies log in by themselves if it is slower or fails.
      for (let i = 0; i < 300 && !existsSync(socket); i++) {
        await new Promise((r) => setTimeout(r, 100));
        if (!m.running && i > 5) break;
      }
    },
    async close() {
      await master?.stop();
      master = null;
      rmSync(controlDir, { recursive: true, force: true });
    },
  };
}

function rcloneTransport(t: Extract<OffloadTarget, { type: 'rclone' }>, cfg: OffloadConfig, box: string, env?: NodeJS.ProcessEnv): OffloadTransport {
  const colon = t.remote.indexOf(':');
  const name = t.remote.slice(0, colon + 1);
  const rpath = t.remote.slice(colon + 1);
  const base = name + (rpath ? path.posix.join(rpath, box) : box);
  const remote = (rel: string): string => `${base}/${rel}`;
  const common = [...(t.config_file ? ['--config', t.config_file] : []), '--low-level-retries', '3', '--retries', '1'];
  const rclone = async (args: string[], timeoutMs: number) => {
    const r = await runOnce('rclone', [...args, ...common], { timeoutMs, env });
    return { ...r, out: r.stdout.toString('utf8') };
  };
  return {
    describe: `rclone ${base}`,
    tool: 'rclone',
    copySpec: (local, rel) => ({
      // rclone resumes by copying the file again (most remotes cannot append); it writes under a temporary name.
      ...lowPriority('rclone', ['copyto', local, remote(rel), '--timeout', `${cfg.io_timeout_s}s`, ...(cfg.bwlimit_kbps > 0 ? ['--bwlimit', `${cfg.bwlimit_kbps}k`] : []), ...common]),
      env,
    }),
    async remoteSha256(files) {
      const out = new Map<string, string | null>();
      for (const f of files) {
        const hash = async (download: boolean) => rclone(['hashsum', 'sha256', ...(download ? ['--download'] : []), remote(f.rel)], hashTimeoutMs(f.bytes) * (download ? 4 : 1));
        let r = await hash(false);
        // A remote without SHA-256 of its own (S3 multipart, SMB): download the copy and hash it here.
        if (r.code !== 0 && /not supported|unsupported|hash type/i.test(r.stderr)) r = await hash(true);
        const m = /^([0-9a-fA-F]{64}) /.exec(r.out);
        if (r.code === 0 && m) out.set(f.rel, m[1]!.toLowerCase());
        else if ((r.code === 0 && !r.out.trim()) || /not found|doesn't exist|no such file/i.test(r.stderr)) out.set(f.rel, null);
        else throw new Error(`rclone hashsum failed${r.timedOut ? ' (timed out)' : ''}: ${firstLine(r.stderr) || `exit ${r.code}`}`);
      }
      return out;
    },
    async removeRemote(rel) {
      const r = await rclone(['deletefile', remote(rel)], 120_000);
      if (r.code !== 0 && !/not found|doesn't exist/i.test(r.stderr)) throw new Error(`rclone deletefile failed: ${firstLine(r.stderr) || `exit ${r.code}`}`);
    },
    open: async () => undefined,
    close: async () => undefined,
  };
}
