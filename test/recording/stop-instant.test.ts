// Stop and pause honour their instant: a real box with a real test camera, triggers from the gpiomon stand-in
// (replaying edges stamped on the live CLOCK_MONOTONIC) and over HTTP with an explicit at_mono_us. No frame
// captured at or after a stop or pause instant may be in the file, the CSV or the database; every frame captured
// before it must be.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { monoNowUs } from '../../src/clock.ts';
import { createGpioTriggers, gpioConfigSchema } from '../../src/triggers/gpio/index.ts';
import { parseTimingCsv } from '../../src/timing/csv-format.ts';
import type { Db } from '../../src/storage/database.ts';
import { startHttpBox } from '../helpers/box.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { ffprobeCount, sleep, startTestBox, type TestBox } from '../runtime/runtime-helpers.ts';

const STANDINS = fileURLToPath(new URL('../standins', import.meta.url));
const FPS = 30;
const PERIOD_US = 1e6 / FPS;

interface Frame {
  capture_us: number;
  flags: string;
}

function framesOf(db: Db, recordingId: number): Frame[] {
  return db.prepare('SELECT capture_us, flags FROM frames WHERE recording_id = ? ORDER BY frame_index').all(recordingId) as Frame[];
}

/** File, CSV and database hold the same frames (the ones the database lists). */
function assertAgree(t: { root: string; db: Db }, recordingId: number): Frame[] {
  const rec = t.db.prepare('SELECT path, csv_path, frame_count AS frames FROM recordings WHERE id = ?').get(recordingId) as { path: string; csv_path: string; frames: number };
  const rows = framesOf(t.db, recordingId);
  assert.equal(rows.length, rec.frames);
  const csv = parseTimingCsv(readFileSync(path.join(t.root, rec.csv_path), 'utf8'));
  assert.deepEqual(
    csv.map((r) => r.captureUs),
    rows.map((r) => r.capture_us),
  );
  assert.equal(ffprobeCount(path.join(t.root, rec.path)), rows.length);
  return rows;
}

/** The cut at `atUs`: nothing at or after it, and the last frame before it is the camera's last one before it. */
function assertCutAt(rows: Frame[], atUs: number, what: string): void {
  const after = rows.filter((r) => r.capture_us >= atUs);
  assert.deepEqual(after, [], `${what}: frames captured at or after the instant ${atUs} were written`);
  const last = rows[rows.length - 1]!;
  assert.ok(atUs - last.capture_us <= PERIOD_US + 3000, `${what}: the last frame (${last.capture_us}) is ${atUs - last.capture_us} µs before the instant: frames before it are missing`);
}

const cameras = [{ id: 'cam0', source: 'test', width: 320, height: 240, fps: FPS, gop_seconds: 0.5, bitrate_kbps: 300 }];

test('a GPIO stop edge confirmed 150 ms later (min_pulse_ms) cuts the file at the edge', async (t) => {
  const gpio = { inputs: [{ line: 15, mode: 'start_stop', stop_line: 17, min_pulse_ms: 150, debounce_ms: 0 }] };
  const box: TestBox = await startTestBox({ cameras: 1, extra: { cameras, gpio, recording: { stop_wait_ms: 1000 } } });
  const state = tmpDir('rigcam-gpio-stop-');
  // Edges (seconds from the replay's start): start pulse on GPIO15, stop pulse on GPIO17, each 300 ms wide.
  const fixture = path.join(state, 'edges.txt');
  const edge = (s: number, kind: string, line: number): string => `${Math.floor(s)}.${String(Math.round((s % 1) * 1e9)).padStart(9, '0')}\t${kind}\tgpiochip0 ${line}`;
  writeFileSync(fixture, [edge(10, 'falling', 15), edge(11.5, 'rising', 15), edge(11.8, 'falling', 15), edge(14, 'rising', 17), edge(14.3, 'falling', 17)].join('\n') + '\n');
  const controller = createGpioTriggers(gpioConfigSchema.parse(gpio), {
    handler: box.box,
    env: { ...process.env, PATH: `${STANDINS}:${process.env.PATH}`, GPIOD_STANDIN_VERSION: '2', GPIOD_STANDIN_BOARD: 'rpi4', GPIOD_STANDIN_STATE_DIR: state, GPIOMON_FIXTURE: fixture, GPIOMON_RESTAMP: 'now' },
  });
  t.after(async () => {
    await controller.stop();
    await box.close();
  });
  const started = box.waitStatus('recording_started', undefined, 20_000);
  const stopped = box.waitStatus('recording_stopped', undefined, 20_000);
  controller.start();
  const s = await started;
  const st = await stopped;
  const stopUs = st.data.stop_mono_us as number;
  assert.equal(s.data.trigger_source, 'gpio');
  const rec = (st.data.recordings as Array<{ recording_id: number }>)[0]!;
  const rows = assertAgree(box, rec.recording_id);
  assert.ok(rows.length > 40, `only ${rows.length} frames`);
  assertCutAt(rows, stopUs, 'GPIO stop');
  const hold = box.db.prepare('SELECT stop_hold_ms FROM recordings WHERE id = ?').get(rec.recording_id) as { stop_hold_ms: number };
  assert.equal(hold.stop_hold_ms, 150 + 250);
});

test('HTTP pause and stop with at_mono_us in the past cut at those instants; bad instants are refused', async (t) => {
  const h = await startHttpBox({ extra: { cameras, recording: { stop_wait_ms: 1000, stop_hold_ms: 600 } } });
  t.after(() => h.close());
  const start = await h.api('/api/trials/start', { json: { session: 'late' } });
  assert.equal(start.status, 200);
  await sleep(1500);
  // A pause that happened 300 ms before it reaches the box.
  const pauseUs = monoNowUs() - 300_000;
  const pause = await h.api('/api/commands', { json: { command: 'pause_recording', payload: { at_mono_us: pauseUs } } });
  assert.equal(pause.status, 200, await pause.clone().text());
  await sleep(1000);
  const resume = await h.api('/api/commands', { json: { command: 'resume_recording', payload: {} } });
  const resumeUs = ((await resume.json()) as { data: { resume_mono_us: number } }).data.resume_mono_us;
  await sleep(1500);

  // Refused, and nothing changes: in the future, older than the hold, not a number.
  for (const bad of [monoNowUs() + 1_000_000, monoNowUs() - 700_000, 'soon', -5]) {
    const r = await h.api('/api/trials/stop', { json: { at_mono_us: bad } });
    assert.equal(r.status, 400, `at_mono_us ${bad}`);
    assert.match(((await r.json()) as { error: string }).error, /at_mono_us/);
  }
  assert.equal(((await (await h.api('/api/status')).json()) as { recording: boolean }).recording, true);

  const stopUs = monoNowUs() - 400_000;
  const stop = await h.api('/api/trials/stop', { json: { at_mono_us: stopUs } });
  assert.equal(stop.status, 200);
  const rec = ((await stop.json()) as { data: { recordings: Array<{ recording_id: number }> } }).data.recordings[0]!;
  const rows = assertAgree(h, rec.recording_id);
  assertCutAt(rows, stopUs, 'HTTP stop');
  const beforePause = rows.filter((r) => r.capture_us < pauseUs);
  assertCutAt(beforePause, pauseUs, 'pause');
  // Between the pause and the resume only the GOP the resume starts from, flagged paused.
  const during = rows.filter((r) => r.capture_us >= pauseUs && r.capture_us < resumeUs);
  for (const r of during) assert.match(r.flags, /paused/, `frame ${r.capture_us} captured during the pause is written unflagged`);
  assert.ok(during.length <= FPS * 0.5 + 1, `${during.length} frames written during the pause`);
});
