import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { tmpDir } from '../helpers/tmp.ts';
import { ffprobeCount } from '../runtime/runtime-helpers.ts';

/**
 * scripts/release.sh (npm run release) for real: compiles, packs, and the packed release runs its
 * compiled CLI: once with this repo's node_modules, once with production dependencies only, as a box has them.
 */

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const version = (JSON.parse(readFileSync(path.join(repo, 'package.json'), 'utf8')) as { version: string }).version;

describe('scripts/release.sh', () => {
  const out = tmpDir('rigcam-release-');
  const hadDist = existsSync(path.join(repo, 'dist'));
  let built = false;
  let tarball = '';

  function build(): void {
    if (built) return;
    const res = spawnSync('bash', [path.join(repo, 'scripts/release.sh')], { cwd: repo, env: { ...process.env, RIGCAM_RELEASE_DIR: out }, encoding: 'utf8', timeout: 120_000 });
    assert.equal(res.status, 0, `release.sh failed:\n${res.stdout}${res.stderr}`);
    tarball = res.stdout.trim().split('\n').pop() ?? '';
    built = true;
  }

  it('writes rigcam-<version>.tar.gz with dist, bin, package files, README and deploy, and no node_modules', () => {
    build();
    assert.equal(tarball, path.join(out, `rigcam-${version}.tar.gz`));
    const list = spawnSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
    const top = `rigcam-${version}/`;
    assert.ok(list.every((f) => f.startsWith(top)), 'one top-level folder');
    for (const f of ['dist/cli/main.js', 'dist/web/index.html', 'dist/web/app.js', 'dist/service/sd-notify.js', 'bin/rigcam.js', 'package.json', 'package-lock.json', 'README.md', 'deploy/systemd/rigcam.service', 'deploy/image/build-image.sh', 'deploy/image/firstboot.sh']) {
      assert.ok(list.includes(top + f), `${f} is in the release`);
    }
    assert.ok(!list.some((f) => /\/(node_modules|src|test)\//.test(f)), 'no node_modules, sources or tests');
    assert.ok(!list.some((f) => f.endsWith('.ts')), 'no TypeScript files');
    const owners = spawnSync('tar', ['-tvzf', tarball], { encoding: 'utf8' }).stdout;
    assert.ok(owners.split('\n').filter(Boolean).every((l) => l.split(/\s+/)[1] === '0/0'), 'files owned by root in the tarball');
  });

  it('leaves no dist/ in the working tree (bin/rigcam.js would prefer it to the sources)', () => {
    build();
    assert.equal(existsSync(path.join(repo, 'dist')), hadDist);
  });

  it('the unpacked release runs its compiled CLI and accepts the image default config', () => {
    build();
    const box = path.join(out, 'box');
    mkdirSync(box);
    assert.equal(spawnSync('tar', ['-xzf', tarball, '-C', box, '--strip-components=1']).status, 0);
    symlinkSync(path.join(repo, 'node_modules'), path.join(box, 'node_modules'));
    const res = spawnSync(process.execPath, [path.join(box, 'bin/rigcam.js'), 'config', 'check', path.join(box, 'deploy/image/rigcam.default.yaml')], { encoding: 'utf8' });
    assert.equal(res.status, 0, res.stderr);
    assert.match(res.stdout, /^OK .*: 1 camera\(s\): cam0 \(v4l2\)$/m);
  });

  it('the release runs as a box runs it: production dependencies only (no tsx), serve answers and records a trial', async () => {
    build();
    const box = path.join(out, 'prod');
    mkdirSync(box);
    assert.equal(spawnSync('tar', ['-xzf', tarball, '-C', box, '--strip-components=1']).status, 0);
    // The box's `npm ci --omit=dev`, offline and without rebuilding better-sqlite3 (minutes): copy this
    // repo's installed modules, then let npm remove the dev dependencies the lockfile names.
    cpSync(realpathSync(path.join(repo, 'node_modules')), path.join(box, 'node_modules'), { recursive: true, verbatimSymlinks: true });
    const prune = spawnSync('npm', ['prune', '--omit=dev', '--offline', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: box, encoding: 'utf8', timeout: 120_000 });
    assert.equal(prune.status, 0, prune.stderr);
    for (const dev of ['tsx', 'esbuild', 'typescript', 'playwright-core', '@esbuild/linux-x64', '@esbuild/linux-arm64'])
      assert.ok(!existsSync(path.join(box, 'node_modules', dev)), `${dev} is not installed on the box`);
    assert.ok(existsSync(path.join(box, 'node_modules/better-sqlite3')), 'production dependencies are');

    const data = path.join(box, 'data');
    const cfg = path.join(box, 'rigcam.yaml');
    writeFileSync(cfg, `data_dir: ${data}\nhttp:\n  port: 0\ncameras:\n  - { id: cam0, width: 320, height: 240, fps: 30 }\n`);
    const child = spawn(process.execPath, [path.join(box, 'bin/rigcam.js'), 'serve', '--config', cfg], { cwd: box, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    child.stdout.on('data', (d: Buffer) => (log += d.toString()));
    child.stderr.on('data', (d: Buffer) => (log += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('close', r));
    try {
      let url = '';
      for (const t0 = Date.now(); !url; await new Promise((r) => setTimeout(r, 100))) {
        url = /"url":"(http:\/\/[^"]+)\/"/.exec(log)?.[1] ?? '';
        if (Date.now() - t0 > 30_000 || child.exitCode !== null) throw new Error(`serve did not come up:\n${log}`);
      }
      const health = await fetch(`${url}/api/health`);
      assert.equal(health.status, 200);
      assert.equal(((await health.json()) as { ok: boolean }).ok, true);
      const page = await fetch(`${url}/`);
      assert.equal(page.status, 200, 'the web page is served from dist/web');
      assert.match(await page.text(), /<html/i);
      const post = (p: string, body: unknown): Promise<Response> =>
        fetch(url + p, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      // HTTP answers before the camera's first frames: a start is refused (409) until it is ready.
      let started = await post('/api/trials/start', { session: 'prod' });
      for (const t0 = Date.now(); started.status === 409 && Date.now() - t0 < 20_000; started = await post('/api/trials/start', { session: 'prod' }))
        await new Promise((r) => setTimeout(r, 200));
      assert.equal(started.status, 200, await started.clone().text());
      await new Promise((r) => setTimeout(r, 1500));
      const stopped = (await (await post('/api/trials/stop', {})).json()) as { ok: boolean; data: { recordings: Array<{ path: string; frames: number }> } };
      assert.equal(stopped.ok, true);
      const rec = stopped.data.recordings[0]!;
      assert.ok(rec.frames >= 20, `${rec.frames} frames recorded`);
      assert.equal(ffprobeCount(path.join(data, 'recordings', rec.path)), rec.frames, 'the file plays with every frame');
    } finally {
      child.kill('SIGTERM');
      assert.equal(await exited, 0, log.slice(-2000));
      rmSync(path.join(box, 'node_modules'), { recursive: true, force: true });
    }
  });
});

describe('bin/rigcam.js chooses sources or build', () => {
  /** A folder with bin/rigcam.js and the given files (each prints its own name). */
  function layout(files: string[], withModules: boolean): string {
    const dir = tmpDir('rigcam-bin-');
    mkdirSync(path.join(dir, 'bin'));
    cpSync(path.join(repo, 'bin/rigcam.js'), path.join(dir, 'bin/rigcam.js'));
    writeFileSync(path.join(dir, 'package.json'), '{"type":"module"}');
    for (const f of files) {
      mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
      writeFileSync(path.join(dir, f), `const where: string = ${JSON.stringify(f)};\nconsole.log(where);\n`.replace(': string', f.endsWith('.ts') ? ': string' : ''));
    }
    if (withModules) symlinkSync(realpathSync(path.join(repo, 'node_modules')), path.join(dir, 'node_modules'));
    return dir;
  }
  const run = (dir: string) => spawnSync(process.execPath, [path.join(dir, 'bin/rigcam.js')], { encoding: 'utf8' });

  it('a working tree runs its sources even with a dist/ left in it', () => {
    const r = run(layout(['src/cli/main.ts', 'dist/cli/main.js'], true));
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'src/cli/main.ts\n');
  });

  it('a release (no src/) runs dist/ without tsx', () => {
    const r = run(layout(['dist/cli/main.js'], false));
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'dist/cli/main.js\n');
  });

  it('says why when it cannot run: sources without tsx, or neither sources nor build', () => {
    const noTsx = run(layout(['src/cli/main.ts', 'dist/cli/main.js'], false));
    assert.equal(noTsx.status, 1);
    assert.match(noTsx.stderr, /^rigcam: this is a working tree \(src\/ is here\) but tsx is not installed: run `npm ci`/);
    const empty = run(layout([], false));
    assert.equal(empty.status, 1);
    assert.match(empty.stderr, /^rigcam: neither src\/cli\/main\.ts nor dist\/cli\/main\.js under .*: not a working tree, and not a complete release\n$/);
  });
});
