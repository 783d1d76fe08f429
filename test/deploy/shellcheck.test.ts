import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { skipUnlessCi } from '../helpers/requires.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
// Every scripts/*.sh (a new release script cannot be forgotten), plus the deploy and rig scripts.
const scripts = [
  ...readdirSync(path.join(repo, 'scripts')).filter((f) => f.endsWith('.sh')).sort().map((f) => `scripts/${f}`),
  'deploy/image/build-image.sh',
  'deploy/image/firstboot.sh',
  'scripts/rig/build-image.sh',
  'scripts/rig/guest/setup.sh',
  'scripts/rig/guest/rig-devices.sh',
];
const hasShellcheck = spawnSync('shellcheck', ['--version'], { stdio: 'ignore' }).status === 0;

it('the deploy shell scripts pass shellcheck', { skip: skipUnlessCi(!hasShellcheck && 'shellcheck is not installed (apt-get install shellcheck)') }, () => {
  const res = spawnSync('shellcheck', scripts, { cwd: repo, encoding: 'utf8' });
  assert.equal(res.status, 0, res.stdout + res.stderr);
});
