import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * `rigcam serve` stand-in for deployment tests: the HTTP surface the rollout relies on
 * (GET /api/health, GET /api/status with `recording`), reading the config the role wrote.
 * `recording` is true while <data_dir>/recording exists. With http.token set, both routes want it
 * (the role sends it). <data_dir>/status-answer, when present, makes /api/status answer badly:
 * `500`, `garbage` (200, a JSON content type, a body that is not JSON) or `hang` (never answers).
 * A broken release exits at once.
 */
function serverSource(broken: boolean, doctorEnv: Record<string, string> | null): string {
  return `#!/usr/bin/env node
import { createServer } from 'node:http';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
const version = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version;
${
  doctorEnv
    ? `if (process.argv[2] === 'doctor') {
  const dataDir = /^data_dir: (.+)$/m.exec(readFileSync(process.env.RIGCAM_CONFIG, 'utf8'))[1].trim();
  appendFileSync(path.join(dataDir, 'doctor-calls.log'), JSON.stringify({ args: process.argv.slice(2), uid: process.getuid(), config: process.env.RIGCAM_CONFIG }) + '\\n');
  const env = ${JSON.stringify(doctorEnv)};
  const r = spawnSync(process.execPath, [${JSON.stringify(path.join(repo, 'bin/rigcam.js'))}, ...process.argv.slice(2)], { stdio: 'inherit', env: { ...process.env, ...env, PATH: env.PATH + ':' + process.env.PATH } });
  process.exit(r.status ?? 1);
}
`
    : ''
}if (process.argv[2] !== 'serve') { console.log('rigcam ' + version); process.exit(0); }
${broken ? "console.error('broken release'); process.exit(1);" : ''}
const text = readFileSync(process.env.RIGCAM_CONFIG, 'utf8');
const port = Number(/^\\s+port: (\\d+)$/m.exec(text)[1]);
const dataDir = /^data_dir: (.+)$/m.exec(text)[1].trim();
const token = (/^\\s+token: (.+)$/m.exec(text)?.[1] ?? 'null').trim();
const json = (res, body) => { res.setHeader('content-type', 'application/json'); res.end(JSON.stringify(body)); };
createServer((req, res) => {
  if (token !== 'null' && req.headers.authorization !== 'Bearer ' + token) { res.statusCode = 401; return res.end(); }
  if (req.url === '/api/health') return json(res, { ok: true, version, pid: process.pid });
  if (req.url === '/api/status') {
    const answer = existsSync(path.join(dataDir, 'status-answer')) ? readFileSync(path.join(dataDir, 'status-answer'), 'utf8').trim() : '';
    if (answer === 'hang') return;
    if (answer === '500') { res.statusCode = 500; return res.end('internal error'); }
    if (answer === 'garbage') { res.setHeader('content-type', 'application/json'); return res.end('{"recording": fal'); }
    return json(res, { recording: existsSync(path.join(dataDir, 'recording')), version, pid: process.pid });
  }
  res.statusCode = 404;
  res.end();
}).listen(port, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
`;
}

/**
 * release/rigcam-<version>.tar.gz as `npm run release` lays it out, with the repo's real deploy/. With `doctorEnv`,
 * `rigcam doctor` is the repo's real one run with that environment added (PATH: prepended), each call logged as a
 * JSON line in <data_dir>/doctor-calls.log.
 */
export function makeFakeRelease(dir: string, version: string, opts: { broken?: boolean; doctorEnv?: Record<string, string> } = {}): string {
  const stage = path.join(dir, `stage-${version}`);
  const top = path.join(stage, `rigcam-${version}`);
  mkdirSync(path.join(top, 'bin'), { recursive: true });
  mkdirSync(path.join(top, 'dist/cli'), { recursive: true });
  writeFileSync(path.join(top, 'package.json'), JSON.stringify({ name: 'rigcam', version, type: 'module' }, null, 2));
  writeFileSync(path.join(top, 'package-lock.json'), JSON.stringify({ name: 'rigcam', version, lockfileVersion: 3, packages: {} }));
  writeFileSync(path.join(top, 'bin/rigcam.js'), serverSource(opts.broken ?? false, opts.doctorEnv ?? null), { mode: 0o755 });
  writeFileSync(path.join(top, 'dist/cli/main.js'), '// compiled service\n');
  writeFileSync(path.join(top, 'README.md'), readFileSync(path.join(repo, 'README.md')));
  cpSync(path.join(repo, 'deploy'), path.join(top, 'deploy'), { recursive: true });
  const tarball = path.join(dir, `rigcam-${version}.tar.gz`);
  execFileSync('tar', ['-czf', tarball, '-C', stage, `rigcam-${version}`]);
  return tarball;
}
