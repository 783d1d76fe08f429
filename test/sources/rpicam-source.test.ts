import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { Writable } from 'node:stream';
import { createLogger, silentLogger } from '../../src/log/logger.ts';
import { CameraPipeline } from '../../src/pipeline/camera-pipeline.ts';
import type { CapturedFrame } from '../../src/pipeline/captured-frame.ts';
import { CSV_HEADER } from '../../src/timing/csv-format.ts';
import { monoNowUs, wallMinusMonoUs } from '../../src/clock.ts';
import {
  originFromAnnounced,
  parseRpicamVersion,
  parseStartTimestampLine,
  rpicamEncoderFor,
  rpicamSourceSpec,
  rpicamVersionProblem,
  rpicamVidArgs,
  type RpicamEncoder,
  type RpicamSourceOptions,
} from '../../src/sources/rpicam-source.ts';
import { openDatabase } from '../../src/storage/database.ts';
import { Store } from '../../src/storage/store.ts';
import { repoRoot } from '../helpers/cli.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { startTrialRecording } from '../helpers/trial-recorder.ts';

const run = promisify(execFile);
const STANDINS = path.join(repoRoot, 'test/standins');
const STANDIN = path.join(STANDINS, 'rpicam-vid');
const FIX = path.join(repoRoot, 'hw-fixtures/rpicam-vid');
const PI4_LIST = path.join(repoRoot, 'hw-fixtures/rpicam/pi4-imx708-wide/list-cameras.txt');
const PI5_LIST = path.join(repoRoot, 'hw-fixtures/rpicam/pi5-imx708-camera-module-3/list-cameras.txt');

const base: RpicamSourceOptions = { camera: 0, width: 1920, height: 1080, fps: 30, gopSeconds: 1, bitrateKbps: 6000, encoder: 'h264_v4l2m2m' };

function argValue(args: string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
}

function standinEnv(extra: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${STANDINS}${path.delimiter}${process.env.PATH ?? ''}` };
  for (const k of Object.keys(env)) if (k.startsWith('RIGCAM_RPICAM_') || k === 'RIGCAM_STANDIN_LOG') delete env[k];
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v;
  return env;
}

// Runs the stand-in; with `stopWhen`, sends SIGINT (as rigcam does) once stderr matches it — waiting on the output
// rather than a fixed time, so a slow ffmpeg start on a loaded machine cannot cut the run short.
function runStandin(args: string[], env: NodeJS.ProcessEnv, stopWhen?: RegExp): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(STANDIN, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    let signalled = false;
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => {
      err += b.toString();
      if (stopWhen && !signalled && stopWhen.test(err)) {
        signalled = true;
        child.kill('SIGINT');
      }
    });
    const cap = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`stand-in still running after 60 s; stderr so far:\n${err}`));
    }, 60_000);
    child.on('close', (code) => {
      clearTimeout(cap);
      resolve({ code, stdout: Buffer.concat(out), stderr: err });
    });
  });
}

describe('rpicam-vid command line', () => {
  it('Pi 4: libav MPEG-TS on stdout through the hardware encoder, camera, size, rate, GOP, bitrate', () => {
    const s = rpicamSourceSpec({ ...base, camera: 1, fps: 25 });
    const a = s.args;
    assert.equal(s.command, 'rpicam-vid');
    assert.equal(s.kind, 'rpicam');
    assert.equal(s.clock, 'boottime');
    assert.equal(s.encoder, 'rpicam-hw');
    assert.equal(s.device, undefined);
    assert.deepEqual([s.width, s.height, s.fps], [1920, 1080, 25]);
    assert.equal(argValue(a, '--camera'), '1');
    assert.equal(argValue(a, '--width'), '1920');
    assert.equal(argValue(a, '--height'), '1080');
    assert.equal(argValue(a, '--framerate'), '25');
    assert.equal(argValue(a, '--codec'), 'libav');
    assert.equal(argValue(a, '--libav-format'), 'mpegts');
    assert.equal(argValue(a, '--libav-video-codec'), 'h264_v4l2m2m');
    assert.equal(argValue(a, '--level'), '4.2');
    assert.equal(argValue(a, '--intra'), '25');
    assert.equal(argValue(a, '--bitrate'), '6000kbps');
    assert.equal(argValue(a, '--timeout'), '0');
    assert.equal(argValue(a, '--output'), '-');
    assert.equal(a.at(-1), '-');
    for (const f of ['--nopreview', '--inline', '--verbose=2']) assert.ok(a.includes(f), f);
    assert.ok(!a.includes('--low-latency'));
    // Neither can time frames with a container: libav refuses --save-pts and never writes --metadata.
    assert.ok(!a.some((x) => /save-pts|metadata|--verbose$/.test(x)), a.join(' '));
  });

  it('Pi 5: libx264 with --low-latency (no B-frames), GOP in frames', () => {
    const s = rpicamSourceSpec({ ...base, encoder: 'libx264', fps: 60, gopSeconds: 0.5 });
    assert.equal(argValue(s.args, '--libav-video-codec'), 'libx264');
    assert.ok(s.args.includes('--low-latency'));
    assert.ok(!s.args.includes('--level'));
    assert.equal(argValue(s.args, '--intra'), '30');
    assert.equal(s.encoder, 'rpicam-sw');
    assert.equal(s.relativePts.maxHeldFrames, 180);
  });

  it('hardware encoder when the VideoCore encoder node exists (Pi 4), else libx264 (Pi 5)', () => {
    assert.equal(rpicamEncoderFor('/dev/video11'), 'h264_v4l2m2m');
    assert.equal(rpicamEncoderFor(null), 'libx264');
  });

  it('refuses a camera index that is not a whole number ≥ 0', () => {
    assert.throws(() => rpicamVidArgs({ ...base, camera: -1 }), /camera index/);
    assert.throws(() => rpicamVidArgs({ ...base, camera: 1.5 }), /camera index/);
  });

  for (const encoder of ['h264_v4l2m2m', 'libx264'] as RpicamEncoder[]) {
    it(`the real option parser rules accept the ${encoder} command line`, async () => {
      // --version is handled after the whole command line parsed, as in rpicam-apps.
      const r = await run(STANDIN, [...rpicamVidArgs({ ...base, encoder }), '--version'], { env: standinEnv({}) });
      assert.match(r.stdout, /^rpicam-apps build: v1\.11\.0/);
    });
  }

  it('the -lite build and old releases reject it with their own words', async () => {
    const args = rpicamVidArgs({ ...base, encoder: 'libx264' });
    await assert.rejects(run(STANDIN, args, { env: standinEnv({ RIGCAM_RPICAM_LITE: '1', RIGCAM_RPICAM_FIXTURE: PI4_LIST }) }), (e: { code: number; stderr: string }) => {
      assert.equal(e.code, 255);
      assert.equal(e.stderr, "ERROR: *** unrecognised option '--libav-format' ***\n");
      return true;
    });
    const old = path.join(FIX, 'version-v1.5.2-lite.txt');
    await assert.rejects(run(STANDIN, args, { env: standinEnv({ RIGCAM_RPICAM_VERSION: old, RIGCAM_RPICAM_FIXTURE: PI4_LIST }) }), /unrecognised option '--low-latency'/);
  });
});

describe('capture-time origin', () => {
  it('reads the start timestamp line and nothing else', () => {
    assert.equal(parseStartTimestampLine('Video start timestamp : 1795696081190402 us'), 1795696081190402);
    assert.equal(parseStartTimestampLine('Video start timestamp : 2520761426 us\n'), 2520761426);
    for (const l of ['Viewfinder frame 0', 'libav: Audio start timestamp: 123 us', 'Video start timestamp : -5 us', '']) assert.equal(parseStartTimestampLine(l), null, l);
    const spec = rpicamSourceSpec(base);
    assert.ok(spec.relativePts.isChatter('Viewfinder frame 1234'));
    assert.ok(!spec.relativePts.isChatter('ERROR: Device timeout detected, attempting a restart!!!'));
    assert.ok(!spec.relativePts.isChatter('Video start timestamp : 1 us'));
  });

  it('FrameWallClock (realtime) is moved to the monotonic clock; a sensor timestamp is taken as is', () => {
    const offset = 1_795_693_560_429_000;
    assert.deepEqual(originFromAnnounced(1_795_696_081_190_402, () => offset), { originUs: 2_520_761_402, clock: 'wallclock' });
    assert.deepEqual(originFromAnnounced(2_520_761_426, () => offset), { originUs: 2_520_761_426, clock: 'sensor' });
    const spec = rpicamSourceSpec({ ...base, wallMinusMonoUs: () => offset });
    assert.equal(spec.relativePts.originFromStderr('Viewfinder frame 0'), null);
    assert.deepEqual(spec.relativePts.originFromStderr('Video start timestamp : 1795696081190402 us'), { originUs: 2_520_761_402, clockSource: 'rpicam-wallclock' });
    assert.deepEqual(spec.relativePts.originFromStderr('Video start timestamp : 2520761426 us'), { originUs: 2_520_761_426, clockSource: 'rpicam-sensor' });
  });

  it('measures realtime − monotonic to well under Date.now()’s millisecond', () => {
    const a = wallMinusMonoUs();
    const b = wallMinusMonoUs();
    const coarse = Date.now() * 1000 - monoNowUs();
    assert.ok(Math.abs(a - coarse) < 2000, `${a} vs ${coarse}`);
    assert.ok(Math.abs(a - b) < 300, `two measurements ${a} and ${b}`);
  });

  it('reads rpicam-apps versions and says which cannot time frames', () => {
    const v11 = parseRpicamVersion(readFileSync(path.join(FIX, 'version-v1.11.0-pi5-trixie.txt'), 'utf8'))!;
    assert.deepEqual(v11, {
      apps: [1, 11, 0],
      buildLine: 'rpicam-apps build: v1.11.0 18-12-2025 (13:45:58)',
      oldName: false,
      libav: true,
      libcamera: 'v0.6.0+rpt20251202',
    });
    assert.equal(rpicamVersionProblem(v11), null);
    const v16 = parseRpicamVersion(readFileSync(path.join(FIX, 'version-v1.6.0-source-build.txt'), 'utf8'))!;
    assert.match(rpicamVersionProblem(v16)!, /v1\.6\.0 does not report frame capture times \(needs 1\.8\.0/);
    const v152 = parseRpicamVersion(readFileSync(path.join(FIX, 'version-v1.5.2-lite.txt'), 'utf8'))!;
    assert.equal(v152.libav, null);
    const old = parseRpicamVersion(readFileSync(path.join(FIX, 'version-libcamera-apps-2023-lite.txt'), 'utf8'))!;
    assert.equal(old.apps, null);
    assert.ok(old.oldName);
    assert.match(rpicamVersionProblem(old)!, /libcamera-apps does not report/);
    assert.equal(rpicamVersionProblem({ ...v11, libav: false }), 'this rpicam-apps has no libav output (the -lite package)');
    assert.equal(parseRpicamVersion('ffmpeg version 5.1'), null);
  });
});

describe('rpicam-vid stand-in', () => {
  it('fails like the real tool: no camera, a camera index too high, no encoder device on a Pi 5', async () => {
    const args = rpicamVidArgs({ ...base, width: 320, height: 240 });
    const none = await runStandin(args, standinEnv({}));
    assert.equal(none.code, 255);
    assert.equal(
      none.stderr,
      '[0:13:57.732391469] [810]  INFO Camera camera_manager.cpp:326 libcamera v0.5.0+59-d83ff0a4\nERROR: *** no cameras available ***\n',
    );
    const high = await runStandin(rpicamVidArgs({ ...base, camera: 1 }), standinEnv({ RIGCAM_RPICAM_FIXTURE: PI5_LIST }));
    assert.equal(high.code, 255);
    assert.equal(high.stderr, 'ERROR: *** selected camera is not available ***\n');
    const pi5 = await runStandin(args, standinEnv({ RIGCAM_RPICAM_FIXTURE: PI5_LIST, RIGCAM_RPICAM_NO_HW_ENCODER: '1' }));
    assert.equal(pi5.code, 255);
    assert.match(pi5.stderr, /Could not find a valid device\n.*can't configure encoder\nERROR: \*\*\* libav: unable to open video codec: -22 \*\*\*\n$/);
    const stray = await runStandin(['--verbose', '2'], standinEnv({}));
    assert.equal(stray.stderr, 'ERROR: *** too many positional options have been specified on the command line ***\n');
  });

  it('stamps PTS from the first frame (0, then 1/fps steps) and announces that frame’s time; older releases do not', async () => {
    const dir = tmpDir();
    const logFile = path.join(dir, 'standin.log');
    const args = rpicamVidArgs({ ...base, width: 320, height: 240, fps: 30, gopSeconds: 0.5, encoder: 'libx264' });
    // Stopped after frame 16 is reported, so the second keyframe (frame 15) is in the output.
    const r = await runStandin(args, standinEnv({ RIGCAM_RPICAM_FIXTURE: PI4_LIST, RIGCAM_STANDIN_LOG: logFile }), /\nViewfinder frame 16\n/);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^\[0:11:01\.271953329\] \[3103\] {2}INFO Camera camera_manager\.cpp:330 libcamera v0\.5\.2/);
    assert.match(r.stderr, /\nViewfinder frame 0\nVideo start timestamp : (\d+) us\nViewfinder frame 1\n/);
    assert.match(r.stderr, /Received signal 2\n$/);
    const announced = Number(/Video start timestamp : (\d+) us/.exec(r.stderr)![1]);
    assert.ok(announced > 1e15, 'FrameWallClock is CLOCK_REALTIME');
    assert.match(readFileSync(logFile, 'utf8'), new RegExp(`first-frame mono_us=\\d+ announced_us=${announced}\\n`));
    const { packets } = JSON.parse(
      execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'packet=pts,flags', '-of', 'json', '-i', 'pipe:0'], { input: r.stdout }).toString(),
    ) as { packets: Array<{ pts: number; flags: string }> };
    assert.ok(packets.length >= 16, `${packets.length} packets: the keyframes at 0 and 15 are both checked`);
    packets.forEach(({ pts, flags }, i) => {
      assert.equal(pts, i * 3000, `PTS of frame ${i}`);
      assert.equal(flags.startsWith('K'), i % 15 === 0, `keyframe flag of frame ${i}`);
    });

    const old = await runStandin(args, standinEnv({ RIGCAM_RPICAM_FIXTURE: PI4_LIST, RIGCAM_RPICAM_VERSION: path.join(FIX, 'version-v1.6.0-source-build.txt') }), /\nViewfinder frame 1\n/);
    assert.match(old.stderr, /Viewfinder frame 0\n/);
    assert.doesNotMatch(old.stderr, /Video start timestamp/);
  });
});

describe('a trial recorded through rpicam-vid (stand-in) with the real pipeline and recorder', () => {
  const cases: Array<{ encoder: RpicamEncoder; timestamps: 'wallclock' | 'sensor'; list: string; toleranceUs: number }> = [
    // Pi 4 (hardware encoder), current rpicam-apps: the origin comes as FrameWallClock and is converted.
    { encoder: 'h264_v4l2m2m', timestamps: 'wallclock', list: PI4_LIST, toleranceUs: 1500 },
    // Pi 5 (software encoder), libcamera without FrameWallClock: the origin is the sensor timestamp itself.
    { encoder: 'libx264', timestamps: 'sensor', list: PI5_LIST, toleranceUs: 30 },
  ];
  for (const c of cases) {
    it(`${c.encoder}, ${c.timestamps} origin: file, frames table and CSV agree; capture times are the camera's`, async () => {
      const data = tmpDir();
      const logFile = path.join(data, 'standin.log');
      const saved = { ...process.env };
      // The supervisor spawns with this process's environment.
      Object.assign(process.env, standinEnv({ RIGCAM_RPICAM_FIXTURE: c.list, RIGCAM_RPICAM_TIMESTAMPS: c.timestamps, RIGCAM_STANDIN_LOG: logFile }));
      const root = path.join(data, 'recordings');
      const dbFile = path.join(data, 'rigcam.db');
      const db = openDatabase(dbFile);
      const store = new Store(db);
      const fps = 30;
      const pipeline = new CameraPipeline('csi0', () => rpicamSourceSpec({ camera: 0, width: 320, height: 240, fps, gopSeconds: 1, bitrateKbps: 500, encoder: c.encoder }), {
        backoff: { initialMs: 200, maxMs: 1000, healthyAfterMs: 5000 },
        ringWindowUs: 4e6,
        ringMaxBytes: 16 << 20,
        log: silentLogger(),
      });
      const seen: CapturedFrame[] = [];
      pipeline.on('frame', (f) => seen.push(f));
      try {
        pipeline.start();
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error('no keyframe within 10 s')), 10_000);
          pipeline.on('frame', (f) => f.au.keyframe && (clearTimeout(timer), resolve()));
          pipeline.on('exit', (e) => (clearTimeout(timer), reject(new Error(e.message))));
        });
        const { recorder, triggerMonoUs: trigger } = startTrialRecording({ pipeline, store, root, session: 'csi', cameraId: 'csi0', source: 'rpicam', prerollUs: 0 });
        await new Promise((r) => setTimeout(r, 2000));
        const [s] = await recorder.stop(trigger + 2e6);
        assert.ok(s);

        const probed = JSON.parse(
          execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'frame=key_frame,pts', '-of', 'json', s.path]).toString(),
        ) as { frames: Array<{ key_frame: number; pts: number }> };
        const rows = new Database(dbFile, { readonly: true })
          .prepare('SELECT frame_index, capture_us, interval_us, missing_before, pts, keyframe FROM frames WHERE recording_id = ? ORDER BY frame_index')
          .all(s.recordingId) as Array<{ frame_index: number; capture_us: number; interval_us: number | null; missing_before: number; pts: number; keyframe: number }>;
        const rec = new Database(dbFile, { readonly: true }).prepare('SELECT clock, encoder, state, trigger_frame_index FROM recordings WHERE id = ?').get(s.recordingId) as {
          clock: string;
          encoder: string;
          state: string;
          trigger_frame_index: number;
        };
        const csv = readFileSync(s.csv, 'utf8').trim().split('\n');

        // ~2 s at 30 fps, starting on the keyframe at or before the trigger (up to one GOP earlier).
        assert.ok(rows.length >= 55 && rows.length <= 95, `${rows.length} frames`);
        assert.equal(probed.frames.length, rows.length);
        assert.equal(csv.length - 1, rows.length);
        assert.equal(csv[0], CSV_HEADER);
        assert.equal(s.frames, rows.length);
        assert.deepEqual([rec.clock, rec.encoder, rec.state], ['boottime', c.encoder === 'libx264' ? 'rpicam-sw' : 'rpicam-hw', 'complete']);
        assert.equal(probed.frames[0]!.key_frame, 1);
        assert.equal(rows[0]!.keyframe, 1);
        assert.deepEqual(rows.map((r) => r.pts), probed.frames.map((f) => f.pts));
        for (let i = 1; i < rows.length; i++) {
          assert.ok(rows[i]!.capture_us > rows[i - 1]!.capture_us, `capture time not increasing at ${i}`);
          assert.ok(Math.abs(rows[i]!.interval_us! - 33_333) <= 2, `interval ${rows[i]!.interval_us} at ${i}`);
          assert.equal(rows[i]!.missing_before, 0);
        }
        // The trigger lands on the first frame captured at or after it.
        const t = rec.trigger_frame_index;
        assert.ok(rows[t - 1]!.capture_us >= trigger);
        if (t > 1) assert.ok(rows[t - 2]!.capture_us < trigger);

        // Absolute: frame with PTS p was captured at (first frame's monotonic time) + p, as the camera said.
        const firstMono = Number(/first-frame mono_us=(\d+)/.exec(readFileSync(logFile, 'utf8'))![1]);
        for (const r of rows) {
          const expected = firstMono + Math.round(r.pts / 0.09);
          assert.ok(Math.abs(r.capture_us - expected) <= c.toleranceUs, `frame ${r.frame_index}: capture ${r.capture_us}, camera says ${expected}`);
        }
        // And no frame arrived before it was captured, nor long after (encoder + pipe latency).
        for (const f of seen) {
          const latency = f.arrivalUs - f.captureUs;
          assert.ok(latency > -200_000 && latency < 1_000_000, `latency ${latency} µs`);
        }
      } finally {
        await pipeline.stop();
        db.close();
        for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
        Object.assign(process.env, saved);
      }
    });
  }
  it('an rpicam-apps too old to announce the origin: no frame is placed, the run is given up with the reason', async () => {
    const saved = { ...process.env };
    Object.assign(process.env, standinEnv({ RIGCAM_RPICAM_FIXTURE: PI4_LIST, RIGCAM_RPICAM_VERSION: path.join(FIX, 'version-v1.6.0-source-build.txt') }));
    const logged: Array<{ msg?: string; stderr?: string }> = [];
    const destination = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString().split('\n').filter(Boolean)) logged.push(JSON.parse(l) as { msg?: string; stderr?: string });
        done();
      },
    });
    const pipeline = new CameraPipeline('csi0', () => rpicamSourceSpec({ camera: 0, width: 320, height: 240, fps: 30, gopSeconds: 1, bitrateKbps: 500, encoder: 'libx264' }), {
      backoff: { initialMs: 60_000, maxMs: 60_000, healthyAfterMs: 60_000 },
      ringWindowUs: 4e6,
      ringMaxBytes: 16 << 20,
      log: createLogger({ level: 'info', destination }),
    });
    let frames = 0;
    pipeline.on('frame', () => (frames += 1));
    try {
      pipeline.start();
      const exit = await new Promise<{ signal: string | null }>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('the run was not given up within 8 s')), 8000);
        pipeline.once('exit', (e) => (clearTimeout(timer), resolve(e)));
      });
      assert.equal(exit.signal, 'SIGTERM');
      assert.equal(frames, 0);
      assert.ok(logged.some((l) => /did not announce the capture time of its first frame.*1\.8\.0 or newer/.test(l.msg ?? '')), JSON.stringify(logged.slice(-5)));
      // Per-frame chatter stays out of the log; the tool's own start-up lines do not.
      assert.ok(!logged.some((l) => /^Viewfinder frame/.test(l.stderr ?? '')));
      assert.ok(logged.some((l) => /libcamera v0\.5\.2/.test(l.stderr ?? '')));
    } finally {
      await pipeline.stop();
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
    }
  });
});
