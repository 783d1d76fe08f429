import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { checkSessionName, insideRoot, recordingBaseName, sessionDir } from '../../src/recording/paths.ts';
import { tmpDir } from '../helpers/tmp.ts';

describe('recording paths', () => {
  it('accepts plain session names and builds <session>_trial<NNN>_<camera>', () => {
    assert.equal(checkSessionName('mouse42_day-3.a'), 'mouse42_day-3.a');
    assert.equal(recordingBaseName('m1', 7, 'cam0'), 'm1_trial007_cam0');
    assert.equal(recordingBaseName('m1', 1234, 'top'), 'm1_trial1234_top');
    assert.equal(recordingBaseName('m1', 2, 'top', 1), 'm1_trial002_top_seg01');
  });

  for (const [name, why] of [
    ['../etc', /path separator|\.\./],
    ['a/b', /path separator/],
    ['/abs', /absolute path/],
    ['a\\b', /path separator/],
    ['x..y', /"\.\."/],
    ['bad\nname', /control characters/],
    ['tab\tname', /control characters/],
    ['', /empty/],
    ['.hidden', /must start with a letter or digit/],
    ['with space', /may only use/],
    ['x'.repeat(65), /longer than 64/],
  ] as const) {
    it(`refuses ${JSON.stringify(name)}`, () => assert.throws(() => checkSessionName(name), why));
  }

  it('refuses trial numbers that are not positive integers and bad camera ids', () => {
    assert.throws(() => recordingBaseName('s', 0, 'c'), /positive integer/);
    assert.throws(() => recordingBaseName('s', 1.5, 'c'), /positive integer/);
    assert.throws(() => recordingBaseName('s', 1, '../c'), /bad camera id/);
  });

  it('never resolves outside the root, even through a symlinked folder', () => {
    const base = tmpDir();
    const root = path.join(base, 'rec');
    const outside = path.join(base, 'outside');
    mkdirSync(outside);
    mkdirSync(root);
    assert.equal(insideRoot(root, 's1', 'a.ts'), path.join(root, 's1', 'a.ts'));
    assert.throws(() => insideRoot(root, '..', 'x.ts'), /escapes the recordings root/);
    assert.throws(() => insideRoot(root, '/etc/passwd'), /escapes the recordings root/);
    symlinkSync(outside, path.join(root, 'evil'));
    assert.throws(() => insideRoot(root, 'evil', 'x.ts'), /escapes the recordings root/);
    assert.throws(() => sessionDir(root, 'evil'), /escapes the recordings root/);
  });
});
