#!/usr/bin/env node
// A release (scripts/release.sh) has dist/ and no src/: it runs the compiled JavaScript, with production
// dependencies only. A working tree has src/: it always runs the sources through tsx (a dev dependency), never a
// dist/ that a build may have left behind and that would silently lag the sources.
import { existsSync } from 'node:fs';

const src = new URL('../src/cli/main.ts', import.meta.url);
const dist = new URL('../dist/cli/main.js', import.meta.url);

function die(message) {
  process.stderr.write(`rigcam: ${message}\n`);
  process.exit(1);
}

if (existsSync(src)) {
  let tsx;
  try {
    tsx = await import('tsx/esm/api');
  } catch (err) {
    if (err?.code !== 'ERR_MODULE_NOT_FOUND') throw err;
    die('this is a working tree (src/ is here) but tsx is not installed: run `npm ci` (the sources need the dev dependencies), or install a release (`npm run release`)');
  }
  tsx.register();
  await import(src.href);
} else if (existsSync(dist)) {
  await import(dist.href);
} else {
  die(`neither src/cli/main.ts nor dist/cli/main.js under ${new URL('..', import.meta.url).pathname}: not a working tree, and not a complete release`);
}
