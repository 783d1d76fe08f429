import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { keepMallocTuningToThisProcess } from '../../src/supervise/child-env.ts';
import { runCli } from '../helpers/cli.ts';
import { tmpDir } from '../helpers/tmp.ts';

describe("malloc tuning stays in rigcam's own process", () => {
  it('removes every MALLOC_* variable and nothing else', () => {
    const env: NodeJS.ProcessEnv = { MALLOC_MMAP_THRESHOLD_: '32768', MALLOC_ARENA_MAX: '2', MALLOC_TRIM_THRESHOLD_: '0', PATH: '/bin', XMALLOC_X: '1', malloc_lower: '1', RIGCAM_CONFIG: '/etc/rigcam/rigcam.yaml' };
    assert.deepEqual(keepMallocTuningToThisProcess(env).sort(), ['MALLOC_ARENA_MAX', 'MALLOC_MMAP_THRESHOLD_', 'MALLOC_TRIM_THRESHOLD_']);
    assert.deepEqual(env, { PATH: '/bin', XMALLOC_X: '1', malloc_lower: '1', RIGCAM_CONFIG: '/etc/rigcam/rigcam.yaml' });
  });

  it("the camera's ffmpeg, started by the real CLI, does not inherit the unit's MALLOC_MMAP_THRESHOLD_", async () => {
    const dir = tmpDir();
    const bin = path.join(dir, 'bin');
    const dumps = path.join(dir, 'env');
    mkdirSync(bin);
    mkdirSync(dumps);
    const real = execFileSync('sh', ['-c', 'command -v ffmpeg']).toString().trim();
    // An ffmpeg on PATH that notes its environment, then is the real one.
    writeFileSync(path.join(bin, 'ffmpeg'), `#!/bin/sh\nenv > "${dumps}/$$"\nexec "${real}" "$@"\n`);
    chmodSync(path.join(bin, 'ffmpeg'), 0o755);
    const r = await runCli(['record', '--source', 'test', '--duration', '1', '--session', 'env', '--size', '320x240', '--data', path.join(dir, 'data')], {
      env: { PATH: `${bin}${path.delimiter}${process.env.PATH ?? ''}`, MALLOC_MMAP_THRESHOLD_: '32768', RIGCAM_ENV_PROBE: 'passed' },
    });
    assert.equal(r.code, 0, r.stderr);
    const seen = readdirSync(dumps).map((f) => readFileSync(path.join(dumps, f), 'utf8'));
    assert.ok(seen.length >= 1, 'the stand-in ffmpeg ran');
    for (const env of seen) {
      assert.match(env, /^RIGCAM_ENV_PROBE=passed$/m, 'the rest of the environment is passed on');
      assert.doesNotMatch(env, /^MALLOC_/m);
    }
  });
});
