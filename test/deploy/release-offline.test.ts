import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { tmpDir } from '../helpers/tmp.ts';

/**
 * scripts/release-offline.sh, cheaply: the arm64 build itself (an emulated chroot, npm ci compiling under
 * qemu: tens of minutes) is a release step, `npm run release:offline:arm64`, not a test. What is checked
 * here is what can rot silently between two such builds. shellcheck runs on it in shellcheck.test.ts.
 */

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const script = path.join(repo, 'scripts/release-offline.sh');
const text = readFileSync(script, 'utf8');
const pkg = JSON.parse(readFileSync(path.join(repo, 'package.json'), 'utf8')) as { version: string; scripts: Record<string, string> };

it('parses (bash -n)', () => {
  const res = spawnSync('bash', ['-n', script], { encoding: 'utf8' });
  assert.equal(res.status, 0, res.stderr);
});

it('npm run release:offline:arm64 is the same script with --arch arm64, and npm test does not run it', () => {
  assert.equal(pkg.scripts['release:offline'], 'bash scripts/release-offline.sh');
  assert.equal(pkg.scripts['release:offline:arm64'], 'bash scripts/release-offline.sh --arch arm64');
  assert.ok(!/release-offline/.test(pkg.scripts.test ?? ''), 'not part of npm test');
});

it('refuses an unknown target or option before building anything', () => {
  const out = tmpDir('rigcam-offline-args-');
  // Should the script ever accept one, it must not start a chroot build that outlives this test's timeout.
  const bin = path.join(out, 'bin');
  mkdirSync(bin);
  writeFileSync(path.join(bin, 'mmdebstrap'), '#!/bin/sh\necho "mmdebstrap must not run" >&2\nexit 99\n', { mode: 0o755 });
  for (const args of [['--arch', 'sparc'], ['--arch'], ['--bogus']]) {
    const env = { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}`, RIGCAM_RELEASE_DIR: path.join(out, 'release'), RIGCAM_OFFLINE_CACHE: path.join(out, 'cache') };
    const res = spawnSync('bash', [script, ...args], { encoding: 'utf8', timeout: 30_000, env });
    assert.equal(res.status, 1, `${args.join(' ')}: ${res.stdout}${res.stderr}`);
    assert.match(res.stderr, /^release-offline: (--arch: only arm64 is supported|unknown option)/m, args.join(' '));
    assert.equal(res.stdout, '', 'no tarball path printed');
    assert.ok(!existsSync(path.join(out, 'release')), 'no release folder made');
    assert.ok(!existsSync(path.join(out, 'cache')), 'no cache made');
  }
});

it('runs the emulated steps at the lowest priority (the build machine is shared)', () => {
  for (const tool of ['mmdebstrap', 'unshare']) {
    const lines = text.split('\n').filter((l) => new RegExp(`^\\s*[^#]*\\b${tool} --`).test(l));
    assert.ok(lines.length > 0, `${tool} is called`);
    for (const l of lines) assert.match(l, /nice -n 19 /, `${tool} runs under nice -n 19: ${l.trim()}`);
  }
});

it('the smoke run checks what the brief promises: version, config check, frames in DB and CSV, both native modules, their CPU', () => {
  for (const needle of ['bin/rigcam.js --version', 'bin/rigcam.js config check', 'record --source test --duration 2', 'from frames where recording_id', 'summary.csv', 'better_sqlite3.node', 'bindings-cpp', 'file -bL', 'linux-arm64) file_arch=aarch64'])
    assert.ok(text.includes(needle), `the script still has: ${needle}`);
  assert.ok(!/TODO/.test(text), 'the header carries measured times, not TODO');
});

it('rigcam --version prints the package version (the smoke run compares them)', () => {
  const res = spawnSync(process.execPath, [path.join(repo, 'bin/rigcam.js'), '--version'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(res.status, 0, res.stderr);
  assert.equal(res.stdout.trim(), pkg.version);
});
