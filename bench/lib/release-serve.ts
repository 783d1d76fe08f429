import { execFileSync, spawn, type ChildProcessByStdio, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { REPO } from './build-dist.ts';

/**
 * A release as scripts/release.sh lays it out: bin/rigcam.js beside dist/ (compiled by `npm run build`, no src/), so
 * bin/rigcam.js runs the compiled JavaScript without tsx. Packages resolve through a node_modules link to the
 * repository's (the release installs production dependencies only; the extra dev packages are never loaded).
 */
export function buildRelease(dir: string): string {
  execFileSync(process.execPath, [path.join(REPO, 'scripts/build.mjs'), '--outDir', path.join(dir, 'dist')], { stdio: 'pipe' });
  mkdirSync(path.join(dir, 'bin'));
  copyFileSync(path.join(REPO, 'bin/rigcam.js'), path.join(dir, 'bin/rigcam.js'));
  copyFileSync(path.join(REPO, 'package.json'), path.join(dir, 'package.json'));
  symlinkSync(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  return path.join(dir, 'bin/rigcam.js');
}

/**
 * The release to measure: built into `dir` (about 30 s of tsc on an idle machine), or the one at
 * RIGCAM_BENCH_RELEASE (a folder laid out by buildRelease or scripts/release.sh) when set, for repeated runs.
 */
export function releaseFor(dir: string, log: (msg: string) => void): string {
  const given = process.env.RIGCAM_BENCH_RELEASE;
  if (given) {
    const bin = path.resolve(given, 'bin/rigcam.js');
    if (!existsSync(bin) || !existsSync(path.resolve(given, 'dist/cli/main.js')) || existsSync(path.resolve(given, 'src')))
      throw new Error(`RIGCAM_BENCH_RELEASE=${given} is not a release (bin/rigcam.js and dist/, no src/)`);
    log(`release: ${given}`);
    return bin;
  }
  log('building the release (npm run build)');
  return buildRelease(dir);
}

/** PID 1's side of sd_notify: a unix datagram socket (bound by python3: Node has none) printing what arrives. */
export class NotifyListener {
  private waiters: Array<{ match: string; resolve: (atMs: number) => void }> = [];
  readonly messages: Array<{ text: string; atMs: number }> = [];

  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    readonly socket: string,
  ) {
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (line === 'listening') return;
      const m = { text: JSON.parse(line) as string, atMs: performance.now() };
      this.messages.push(m);
      this.waiters = this.waiters.filter((w) => (m.text.split('\n').includes(w.match) ? (w.resolve(m.atMs), false) : true));
    });
  }

  static async start(socket: string): Promise<NotifyListener> {
    const src = [
      'import json, socket, sys',
      's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
      's.bind(sys.argv[1])',
      "print('listening', flush=True)",
      'while True:',
      '    print(json.dumps(s.recv(65536).decode()), flush=True)',
    ].join('\n');
    const child = spawn('python3', ['-c', src, socket]);
    const l = new NotifyListener(child, socket);
    await new Promise<void>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`notify listener exited ${code}`)));
      createInterface({ input: child.stdout }).once('line', () => resolve());
    });
    return l;
  }

  /** performance.now() when a datagram holding this line (e.g. READY=1) arrived. */
  waitFor(line: string, timeoutMs = 30_000): Promise<number> {
    const seen = this.messages.find((m) => m.text.split('\n').includes(line));
    if (seen) return Promise.resolve(seen.atMs);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no ${line} within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({ match: line, resolve: (at) => (clearTimeout(t), resolve(at)) });
    });
  }

  stop(): void {
    this.child.kill();
  }
}

export interface ServeProcess {
  child: ChildProcessWithoutNullStreams;
  /** performance.now() just before the spawn. */
  spawnedAtMs: number;
  /** Resolves to the API's base URL once the service logs it. */
  url: Promise<string>;
  /** Structured log lines seen so far (parsed), with the time each was read. */
  logs: Array<{ msg: string; atMs: number; line: Record<string, unknown> }>;
  /** SIGTERM, then wait for the exit; resolves to the exit code. */
  stop: () => Promise<number | null>;
}

/**
 * How deploy/systemd/rigcam.service runs node: the flags between `node` and bin/rigcam.js on ExecStart, and the
 * Environment= variables other than the config path (e.g. glibc malloc settings). The release benchmarks run the
 * service (and the overhead box) this way, so they measure what ships. RIGCAM_BENCH_NODE_ARGS, when set, replaces
 * the flags (to try others).
 */
export function unitRuntime(): { nodeArgs: string[]; env: Record<string, string> } {
  const unit = readFileSync(path.join(REPO, 'deploy/systemd/rigcam.service'), 'utf8');
  const exec = /^ExecStart=(.*)$/m.exec(unit)?.[1]?.trim().split(/\s+/) ?? [];
  const script = exec.findIndex((t) => t.endsWith('/bin/rigcam.js'));
  if (!/\/node$/.test(exec[0] ?? '') || script < 0) throw new Error(`rigcam.service: ExecStart is not "node … bin/rigcam.js": ${exec.join(' ')}`);
  const env: Record<string, string> = {};
  for (const m of unit.matchAll(/^Environment=(.*)$/gm))
    for (const kv of m[1]!.trim().split(/\s+/)) {
      const i = kv.indexOf('=');
      if (i > 0 && kv.slice(0, i) !== 'RIGCAM_CONFIG') env[kv.slice(0, i)] = kv.slice(i + 1);
    }
  const override = process.env.RIGCAM_BENCH_NODE_ARGS;
  return { nodeArgs: override !== undefined ? override.split(' ').filter(Boolean) : exec.slice(1, script), env };
}

/**
 * A compiled benchmark driver (a floor, the overhead box) under plain node with the unit's flags and environment, so
 * what it costs is measured as the service's would be; stdout piped (its result), stderr inherited.
 */
export function spawnAsUnit(script: string, args: string[], env: NodeJS.ProcessEnv = process.env): ChildProcessByStdio<null, Readable, null> {
  const unit = unitRuntime();
  return spawn(process.execPath, [...unit.nodeArgs, script, ...args], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...env, ...unit.env } });
}

/** `rigcam serve` of a release on a fresh data dir, its `test` cameras as given, run as the unit runs it (unitRuntime). */
export function serveRelease(o: { bin: string; dataDir: string; cameras: Array<{ id: string; width: number; height: number; fps: number }>; env?: NodeJS.ProcessEnv; nodeArgs?: string[]; extraYaml?: string }): ServeProcess {
  const cfg = path.join(o.dataDir, 'rigcam.yaml');
  writeFileSync(
    cfg,
    [`data_dir: ${o.dataDir}`, 'http:', '  host: 127.0.0.1', '  port: 0', 'log:', '  level: info', 'cameras:', ...o.cameras.map((c) => `  - { id: ${c.id}, source: test, width: ${c.width}, height: ${c.height}, fps: ${c.fps} }`), o.extraYaml ?? ''].join('\n') + '\n',
  );
  const spawnedAtMs = performance.now();
  const unit = unitRuntime();
  const child = spawn(process.execPath, [...(o.nodeArgs ?? unit.nodeArgs), o.bin, 'serve', '--config', cfg], { env: { ...process.env, ...unit.env, ...o.env }, stdio: ['pipe', 'pipe', 'pipe'] });
  const logs: ServeProcess['logs'] = [];
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const url = new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (text) => {
      let line: Record<string, unknown>;
      try {
        line = JSON.parse(text) as Record<string, unknown>;
      } catch {
        return;
      }
      logs.push({ msg: String(line.msg ?? ''), atMs: performance.now(), line });
      if (line.msg === 'rigcam serving') resolve(String(line.url).replace(/\/$/, ''));
    });
    child.once('exit', (code) => reject(new Error(`rigcam serve exited ${code} before serving: ${stderr}`)));
  });
  url.catch(() => undefined);
  const stop = (): Promise<number | null> =>
    new Promise((resolve) => {
      if (child.exitCode !== null) return resolve(child.exitCode);
      child.once('exit', (code) => resolve(code));
      child.kill('SIGTERM');
    });
  return { child, spawnedAtMs, url, logs, stop };
}

/** Resolves once the service at `url` reports `count` cameras, every one `ready` (within 60 s, else throws). */
export async function camerasReady(url: string, count: number): Promise<void> {
  for (const t0 = Date.now(); ; await new Promise((r) => setTimeout(r, 200))) {
    const st = (await (await fetch(`${url}/api/status`)).json()) as { cameras?: Array<{ state?: string }> };
    if (st.cameras?.length === count && st.cameras.every((c) => c.state === 'ready')) return;
    if (Date.now() - t0 > 60_000) throw new Error(`cameras not ready: ${JSON.stringify(st).slice(0, 300)}`);
  }
}

/** Resident set size of a process now, bytes (VmRSS). */
export function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : Number.NaN;
}

/** The 1-minute load average, for the notes: a figure on a shared machine needs it beside it. */
export function loadAvg(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}
