import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { tmpDir } from '../helpers/tmp.ts';

/**
 * scripts/release.sh (npm run release) for real: compiles, packs, and the packed release runs its
 * compiled CLI (with this repo's node_modules standing in for the box's `npm ci --omit=dev`).
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
});
