import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { skipUnlessCi } from '../helpers/requires.ts';

const TEST_ROOT = path.resolve(import.meta.dirname, '..');

function testFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = path.join(dir, n);
    return statSync(p).isDirectory() ? testFiles(p) : n.endsWith('.ts') ? [p] : [];
  });
}

describe('a test that skips in CI is a failure', () => {
  it('skipUnlessCi: runs when nothing is missing, skips with the reason on a workstation, throws in CI', () => {
    const saved = process.env.RIGCAM_CI;
    try {
      delete process.env.RIGCAM_CI;
      assert.equal(skipUnlessCi(null), false);
      assert.equal(skipUnlessCi(false), false);
      assert.equal(skipUnlessCi('chromium is missing'), 'chromium is missing');
      process.env.RIGCAM_CI = '1';
      assert.equal(skipUnlessCi(undefined), false);
      assert.throws(() => skipUnlessCi('chromium is missing'), /must run in CI, but here: chromium is missing/);
    } finally {
      if (saved === undefined) delete process.env.RIGCAM_CI;
      else process.env.RIGCAM_CI = saved;
    }
  });

  it('every skip option in the tests goes through skipUnlessCi (no plain skip that CI would count as a pass)', () => {
    const offenders: string[] = [];
    for (const f of testFiles(TEST_ROOT)) {
      if (f.endsWith(path.join('helpers', 'requires.ts')) || f === import.meta.filename) continue;
      readFileSync(f, 'utf8').split('\n').forEach((line, i) => {
        if (/\bskip:(?!\s*skipUnlessCi\()/.test(line) || /\{\s*skip\s*\}/.test(line) || /\bt\.skip\(|\.skip\(/.test(line)) offenders.push(`${path.relative(TEST_ROOT, f)}:${i + 1}: ${line.trim()}`);
      });
    }
    assert.deepEqual(offenders, []);
  });

  it('.ci/run sets RIGCAM_CI=1 for the tests', () => {
    const ci = readFileSync(path.resolve(TEST_ROOT, '..', '.ci', 'run'), 'utf8');
    assert.match(ci, /^export RIGCAM_CI=1$/m);
  });

  it('a test file whose tests are done ends even if it left a timer or a child behind (CI never waits forever)', () => {
    const pkg = JSON.parse(readFileSync(path.resolve(TEST_ROOT, '..', 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    assert.match(pkg.scripts.test, /--test-force-exit/);
    assert.match(pkg.scripts['test:rig'], /--test-force-exit/);
    // And the CI runs both: the suite, then the virtual rig.
    const ci = readFileSync(path.resolve(TEST_ROOT, '..', '.ci', 'run'), 'utf8');
    assert.match(ci, /^npm test <\/dev\/null$/m);
    assert.match(ci, /^npm run test:rig <\/dev\/null$/m);
  });
});
