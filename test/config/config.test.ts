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

describe('config: values that pass the types but cannot work', () => {
  const bad = (raw: unknown, re: RegExp): void => {
    assert.throws(() => parseConfig(raw), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.problems.join('\n'), re);
      return true;
    });
  };

  it('refuses thresholds out of range: 150%, 100%, 1e30 MB, 1e9 GB', () => {
    bad({ disk: { stop_free: '150%' } }, /disk\.stop_free: .*below 100%/);
    bad({ disk: { warn_free: '100%' } }, /disk\.warn_free: .*below 100%/);
    bad({ disk: { min_free_to_start: 1e30 } }, /disk\.min_free_to_start: .*at most/);
    bad({ disk: { retention: { keep_free: '1000000000GB' } } }, /disk\.retention\.keep_free/);
    // the largest sane values still pass
    assert.equal(parseConfig({ disk: { warn_free: '99%', stop_free: '1%', min_free_to_start: '2%' } }).disk.warn_free, '99%');
  });

  it('refuses a stop level at or above the start or warning level (same units only)', () => {
    bad({ disk: { stop_free: '600MB' } }, /disk\.stop_free: .*must be below min_free_to_start \(500MB\)/);
    bad({ disk: { stop_free: '2GB', min_free_to_start: '3GB' } }, /disk\.stop_free: .*must be below warn_free \(2GB\)/);
    bad({ disk: { stop_free: '5%', min_free_to_start: '5%', warn_free: '10%' } }, /must be below min_free_to_start/);
    bad({ disk: { stop_free: 500, min_free_to_start: '0.4GB' } }, /must be below min_free_to_start/);
    // a percentage against an amount needs the volume's size: not judged here
    assert.equal(parseConfig({ disk: { stop_free: '1%', min_free_to_start: '500MB' } }).disk.stop_free, '1%');
  });

  it('refuses "/" and kernel pseudo file systems as data or recordings directory', () => {
    bad({ recordings_dir: '/' }, /recordings_dir: must not be the root directory/);
    bad({ data_dir: '/proc/self' }, /data_dir: must not be under \/proc/);
    bad({ data_dir: '/sys' }, /data_dir: must not be under/);
    bad({ recordings_dir: '/dev/shm/x' }, /recordings_dir: must not be under/);
    bad({ recordings_dir: '/tmp/../' }, /recordings_dir: must not be the root/);
    assert.equal(parseConfig({ data_dir: '/procedures' }).data_dir, '/procedures');
  });

  it('refuses a token that can never match a request header', () => {
    bad({ http: { token: ' '.repeat(16) } }, /http\.token: .*no spaces/);
    bad({ http: { token: 'ümlaut-token-ümlaut-token' } }, /http\.token/);
    bad({ http: { token: 'short' } }, /http\.token: token: at least 16/);
    assert.equal(parseConfig({ http: { token: 'abcdefghijklmnop_+/=' } }).http.token, 'abcdefghijklmnop_+/=');
  });

  it('refuses YAML tags with a plain message naming the line', () => {
    const f = file('tag.yaml', 'data_dir: ./d\nhttp:\n  token: !!binary aGVsbG8taGVsbG8taGVsbG8=\n');
    assert.throws(() => readConfigFile(f), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      const text = err.problems.join('\n');
      assert.match(text, /line 3: YAML tag !!binary is not supported/);
      assert.doesNotMatch(text, /readUInt|toJSON|Buffer/);
      return true;
    });
    assert.throws(() => readConfigFile(file('tag2.yaml', 'log: !custom {level: info}\n')), /YAML tag !custom is not supported/);
  });
});
