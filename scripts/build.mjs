#!/usr/bin/env node
// npm run build [-- --outDir DIR]: compiles src/ to DIR (default dist/, emptied first so no deleted module
// lingers) and copies the web page's static files to DIR/web, where the compiled server serves them from.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const at = args.indexOf('--outDir');
if (args.length && (at !== 0 || args.length !== 2)) {
  process.stderr.write('usage: npm run build [-- --outDir DIR]\n');
  process.exit(2);
}
const outDir = path.resolve(repo, at === 0 ? args[1] : 'dist');
if (at !== 0 && existsSync(outDir)) rmSync(outDir, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', path.join(repo, 'tsconfig.build.json'), '--outDir', outDir], { stdio: 'inherit' });
cpSync(path.join(repo, 'src/web'), path.join(outDir, 'web'), { recursive: true });
