import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig, parseConfig, readConfigFile, recordingsRoot } from '../../src/config/load.ts';
import { runCli } from '../helpers/cli.ts';
import { tmpDir } from '../helpers/tmp.ts';

const dir = tmpDir();
function file(name: string, text: string): string {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
}

describe('config', () => {
  it('an empty file gives the defaults: one test camera', () => {
    const cfg = readConfigFile(file('empty.yaml', ''));
    assert.equal(cfg.cameras.length, 1);
    assert.equal(cfg.cameras[0]!.source, 'test');
    assert.equal(cfg.http.host, '127.0.0.1');
    assert.equal(cfg.telemetry.emit_interval_ms, 1000);
    assert.equal(recordingsRoot(cfg), path.resolve('data/recordings'));
  });

  it('fills defaults inside given sections', () => {
    const cfg = parseConfig({ cameras: [{ id: 'top', source: 'v4l2', device: '/dev/video0' }], recording: { preroll_seconds: 2 } });
    assert.equal(cfg.cameras[0]!.fps, 30);
    assert.equal(cfg.cameras[0]!.encoder, 'auto');
    assert.equal(cfg.recording.preroll_seconds, 2);
    assert.equal(cfg.recording.fsync_interval_ms, 1000);
  });

  it('names the key path and the reason of every problem', () => {
    const f = file('bad.yaml', 'cameras:\n  - id: cam0\n    fps: -3\n  - id: "bad id!"\nhttp:\n  port: 99999\n  colour: blue\n');
    assert.throws(
      () => readConfigFile(f),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError, 'err instanceof ConfigError');
        const text = err.problems.join('\n');
        assert.match(text, /cameras\[0\]\.fps: .*/);
        assert.match(text, /cameras\[1\]\.id: camera id/);
        assert.match(text, /http\.port: /);
        assert.match(text, /http: unknown key "colour"/);
        return true;
      },
    );
  });

  it('refuses duplicate camera ids, bad YAML and duplicate keys', () => {
    assert.throws(() => parseConfig({ cameras: [{ id: 'a' }, { id: 'a' }] }), /camera ids must be unique/);
    assert.throws(() => readConfigFile(file('yaml.yaml', 'cameras: [\n')), /invalid YAML/);
    assert.throws(() => readConfigFile(file('dup.yaml', 'data_dir: a\ndata_dir: b\n')), /invalid YAML/);
  });

  it('looks up --config, then RIGCAM_CONFIG; an explicit file must exist', () => {
    const a = file('a.yaml', 'data_dir: /tmp/a\n');
    const b = file('b.yaml', 'data_dir: /tmp/b\n');
    assert.equal(loadConfig(a, { RIGCAM_CONFIG: b }).config.data_dir, '/tmp/a');
    assert.equal(loadConfig(undefined, { RIGCAM_CONFIG: b }).config.data_dir, '/tmp/b');
    assert.throws(() => loadConfig(path.join(dir, 'missing.yaml'), {}), /config file not found/);
    assert.throws(() => loadConfig(undefined, { RIGCAM_CONFIG: path.join(dir, 'missing.yaml') }), /config file not found/);
  });

  it('`rigcam config check` prints the verdict and exits non-zero on a bad file', async () => {
    const good = await runCli(['config', 'check', file('good.yaml', 'cameras:\n  - id: top\n    source: test\n')]);
    assert.equal(good.code, 0, good.stderr);
    assert.match(good.stdout, /^OK .*1 camera\(s\): top \(test\)/);
    const bad = await runCli(['config', 'check', file('bad2.yaml', 'recording:\n  preroll_seconds: lots\n')]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /recording\.preroll_seconds: .*expected number/);
  });
});
