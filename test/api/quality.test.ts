import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sleep, startHttpBox, type HttpBox } from '../helpers/box.ts';
import { makeSyntheticRecording, type Synthetic } from '../helpers/synthetic-recording.ts';

const TOKEN = 'quality-token-0123456789';

interface Series {
  origin_us: number;
  from_us: number;
  to_us: number;
  width: number;
  buckets: { t: number[]; t_end: number[]; first_frame: number[]; frames: number[]; interval_min_ms: Array<number | null>; interval_max_ms: Array<number | null>; missing: number[]; keyframes: number[] };
  drops: Array<{ frame_index: number; t: number; capture_us: number; missing: number; bucket: number; interval_ms: number }>;
  drops_truncated: boolean;
  gaps: Array<{ frame_index: number; kind: string; gap_ms: number }>;
  trigger: { t: number; mono_us: number; frame_index: number | null } | null;
  stop: { t: number; mono_us: number } | null;
  preroll: { from_t: number; to_t: number } | null;
  markers: Array<{ label: string; t: number; mono_us: number; frame_index: number | null; bucket: number | null }>;
  segments: Array<{ recording_id: number; segment: number }>;
}

interface CsvRow {
  frame_index: number;
  capture_us: number;
  interval_us: number | null;
  missing_before: number;
  markers: string;
}

/** The frames.csv download parsed: what a researcher would plot elsewhere (labels here have no commas). */
async function csvOf(b: HttpBox, id: number): Promise<CsvRow[]> {
  const text = await (await b.api(`/api/recordings/${id}/frames.csv`)).text();
  const [head, ...lines] = text.trimEnd().split('\n');
  const cols = head!.split(',');
  const at = (name: string): number => cols.indexOf(name);
  return lines.map((l) => {
    const c = l.split(',');
    return {
      frame_index: Number(c[at('frame_index')]),
      capture_us: Number(c[at('capture_us')]),
      interval_us: c[at('interval_us')] === '' ? null : Number(c[at('interval_us')]),
      missing_before: Number(c[at('missing_before')]),
      markers: c[at('markers')] ?? '',
    };
  });
}

/** The bucket holding capture instant `us`, found from the answer's own bucket starts (not its formula). */
function bucketHolding(s: Series, us: number): number {
  const t = (us - s.origin_us) / 1e6;
  let k = -1;
  for (let i = 0; i < s.buckets.t.length; i++) if (s.buckets.t[i]! <= t + 1e-9) k = i;
  return k;
}

/** The bucket holding frame `index`, from the answer's own first-frame column. */
function bucketOfFrame(s: Series, index: number): number {
  let k = -1;
  for (let i = 0; i < s.buckets.first_frame.length; i++) if (s.buckets.first_frame[i]! <= index) k = i;
  return k;
}

describe('quality API: decimated series, summary, session rows', () => {
  let b: HttpBox;
  let real: { recordingId: number; sessionId: number };
  let syn: Synthetic;
  let long: Synthetic;
  const drops = new Map([[50, 1], [51, 2], [180, 1], [181, 1], [400, 5], [599, 1]]);

  before(async () => {
    b = await startHttpBox({ token: TOKEN, extra: { recording: { stop_wait_ms: 1000, preroll_seconds: 0.5 } } });
    // Synthetic trials of another session: a clean one, and one with drops, a pause and markers.
    makeSyntheticRecording(b.store, b.root, { session: 'q-syn', fps: 30, frames: 300 });
    syn = makeSyntheticRecording(b.store, b.root, {
      session: 'q-syn', fps: 30, frames: 600, prerollFrames: 15, drops, pauses: new Map([[300, 2_000_000]]), jitterUs: 200,
      markers: [{ label: 'tone', atFrame: 100 }, { label: 'reward', atFrame: 181 }, { label: 'late', atFrame: 590 }],
    });
    // An hour at 120 fps with a drop every 4321 frames and one at each end.
    const longDrops = new Map<number, number>([[2, 1], [432_000, 3]]);
    for (let i = 4321; i < 432_000; i += 4321) longDrops.set(i, 1 + (i % 3));
    long = makeSyntheticRecording(b.store, b.root, { session: 'q-long', fps: 120, frames: 432_000, prerollFrames: 60, drops: longDrops, csv: false, markers: [{ label: 'm', atFrame: 200_000 }] });
    // Writing the synthetic hour above holds the event loop for seconds on a loaded machine: the camera's frames
    // wait in the pipe meanwhile (a gap the real trial would then show as drops and an old pre-roll). Let the
    // stream run steadily again, longer than the pre-roll, before the real trial.
    await sleep(1500);
    // A real trial of the test camera, with pre-roll and two markers.
    const st = await b.api('/api/trials/start', { json: { session: 'q-real', label: 'real' } });
    assert.equal(st.status, 200, await st.clone().text());
    await sleep(1200);
    assert.equal((await b.api('/api/markers', { json: { label: 'lever' } })).status, 200);
    await sleep(700);
    assert.equal((await b.api('/api/markers', { json: { label: 'reward' } })).status, 200);
    await sleep(500);
    const stop = (await (await b.api('/api/trials/stop', { json: {} })).json()) as { data: { recordings: Array<{ recording_id: number }> } };
    const sess = (await (await b.api('/api/sessions')).json()) as { sessions: Array<{ id: number; name: string }> };
    real = { recordingId: stop.data.recordings[0]!.recording_id, sessionId: sess.sessions.find((s) => s.name === 'q-real')!.id };
  });
  after(async () => b?.close());

  it('a real recording: trigger, stop, pre-roll and markers on the frames the CSV puts them', async () => {
    const s = (await (await b.api(`/api/recordings/${real.recordingId}/series?width=300`)).json()) as Series;
    const csv = await csvOf(b, real.recordingId);
    const frames = csv.filter((r) => r.frame_index > 0);
    assert.equal(s.buckets.frames.reduce((a, n) => a + n, 0), frames.length, 'every frame in a bucket');
    assert.ok(s.buckets.t.length <= 300, 'at most width buckets');
    assert.ok(s.trigger, 'trigger');
    assert.equal(s.trigger.t, 0, 'time 0 is the trigger');
    assert.ok(s.preroll && s.preroll.from_t < -0.2 && s.preroll.to_t === 0, `pre-roll shaded before the trigger: ${JSON.stringify(s.preroll)}`);
    assert.ok(s.stop && s.stop.t > 2 && s.stop.t < 4, `stop line: ${JSON.stringify(s.stop)}`);
    assert.deepEqual(s.markers.map((m) => m.label), ['lever', 'reward'], 'markers');
    for (const m of s.markers) {
      const onCsv = frames.find((r) => r.markers.split(';').includes(m.label));
      assert.ok(onCsv, `${m.label} is on a CSV frame`);
      assert.equal(m.frame_index, onCsv.frame_index, `${m.label}: same frame as the CSV`);
      assert.equal(m.bucket, bucketOfFrame(s, onCsv.frame_index), `${m.label}: in the bucket of its frame`);
    }
    const sumRes = await b.api(`/api/recordings/${real.recordingId}/summary`).catch((e: Error) => { throw new Error(`summary: ${e.message} ${String((e as { cause?: unknown }).cause)}`); });
    const sum = (await sumRes.json()) as Record<string, any>;
    assert.equal(sum.frames, frames.length, 'summary frames');
    assert.equal(sum.dropped, 0, 'the test camera drops nothing');
    assert.equal(sum.agreement.ok, true, JSON.stringify(sum.agreement.checks));
    assert.equal(sum.agreement.csv_rows, frames.length, 'CSV sidecar rows');
    assert.ok(Math.abs(sum.effective_fps - 15) < 1, `effective fps ${sum.effective_fps}`);
    assert.ok(Math.abs(sum.interval_ms.p50 - 66.667) < 5, `p50 ${sum.interval_ms.p50}`);
    assert.equal(sum.clock, 'monotonic');
    assert.equal(sum.markers, 2);
  });

  it('keeps every injected drop, where the CSV says, at any width; a pause is a gap, not a drop', async () => {
    const csv = await csvOf(b, syn.recordingId);
    const csvDrops = csv.filter((r) => r.missing_before > 0);
    assert.deepEqual(csvDrops.map((r) => [r.frame_index, r.missing_before]), [...drops], 'the CSV shows the injected drops');
    for (const width of [10, 37, 100, 1000]) {
      const s = (await (await b.api(`/api/recordings/${syn.recordingId}/series?width=${width}`)).json()) as Series;
      assert.equal(s.buckets.missing.reduce((a, n) => a + n, 0), 11, `width ${width}: total missing`);
      assert.equal(s.buckets.frames.reduce((a, n) => a + n, 0), 600, `width ${width}: every frame in exactly one bucket`);
      assert.ok(s.buckets.t.length <= width && s.buckets.t.every((t, i) => i === 0 || t > s.buckets.t[i - 1]!), `width ${width}: ascending buckets`);
      for (const d of csvDrops) {
        const k = bucketHolding(s, d.capture_us);
        assert.ok(s.buckets.missing[k]! >= d.missing_before, `width ${width}: drop at frame ${d.frame_index} in bucket ${k}`);
        assert.ok(s.buckets.interval_max_ms[k]! >= d.interval_us! / 1000 - 0.001, `width ${width}: bucket ${k} max interval shows the drop`);
      }
      assert.deepEqual(s.drops.map((d) => [d.frame_index, d.missing, d.capture_us]), csvDrops.map((r) => [r.frame_index, r.missing_before, r.capture_us]), `width ${width}: exact drop list`);
      for (const d of s.drops) assert.equal(d.bucket, bucketOfFrame(s, d.frame_index), `width ${width}: drop bucket`);
      const maxAll = Math.max(...s.buckets.interval_max_ms.map((v) => v ?? 0));
      assert.ok(maxAll < 250, `width ${width}: the 2 s pause is not drawn as an interval (max ${maxAll} ms)`);
      assert.deepEqual(s.gaps.map((g) => [g.frame_index, g.kind]), [[300, 'pause']], 'the pause is a gap');
      assert.ok(s.gaps[0]!.gap_ms > 2000, 'gap length');
      for (const m of s.markers) {
        const onCsv = csv.find((r) => r.markers.split(';').includes(m.label))!;
        assert.equal(m.frame_index, onCsv.frame_index, `width ${width}: ${m.label} on the CSV's frame`);
        assert.equal(m.bucket, bucketOfFrame(s, onCsv.frame_index), `width ${width}: ${m.label} bucket`);
      }
    }
    // Zoomed: only the span, at full resolution there.
    const z = (await (await b.api(`/api/recordings/${syn.recordingId}/series?width=50&from_us=${syn.rows[170]!.captureUs}&to_us=${syn.rows[190]!.captureUs}`)).json()) as Series;
    assert.equal(z.buckets.frames.reduce((a, n) => a + n, 0), 21, 'zoomed frames');
    assert.deepEqual(z.drops.map((d) => d.frame_index), [180, 181], 'zoomed drops');
    assert.deepEqual(z.markers.filter((m) => m.bucket !== null).map((m) => m.label), ['reward'], 'markers outside the span have no bucket');
  });

  it('summarises drops, percentiles, gaps and the file/CSV/DB agreement; a disagreement is reported', async () => {
    const sum = (await (await b.api(`/api/recordings/${syn.recordingId}/summary`)).json()) as Record<string, any>;
    assert.equal(sum.frames, 600);
    assert.equal(sum.dropped, 11);
    assert.equal(sum.frames_after_drops, 6);
    assert.equal(sum.dropped_percent, Math.round((11 / 611) * 1e6) / 1e4);
    assert.ok(Math.abs(sum.interval_ms.p50 - 33.333) < 0.3, `p50 ${sum.interval_ms.p50}`);
    assert.ok(sum.interval_ms.max > 6 * 33 && sum.interval_ms.max < 7 * 34, `max is the 5-frame drop, not the pause: ${sum.interval_ms.max}`);
    assert.ok(Math.abs(sum.effective_fps - (599 / ((syn.rows[599]!.captureUs - syn.rows[0]!.captureUs - (syn.rows[299]!.intervalUs ?? 0)) / 1e6))) < 0.05, `effective fps without the pause: ${sum.effective_fps}`);
    assert.equal(sum.preroll_s > 0.45 && sum.preroll_s < 0.55, true, `pre-roll ${sum.preroll_s}`);
    assert.equal(sum.agreement.ok, true, JSON.stringify(sum.agreement.checks));
    assert.equal(sum.gaps.length, 1);
    assert.match(sum.links.frames_csv, /frames\.csv$/);
    // A row lost from the database: the check names it.
    b.db.prepare('DELETE FROM frames WHERE recording_id = ? AND frame_index = 77').run(syn.recordingId);
    const bad = (await (await b.api(`/api/recordings/${syn.recordingId}/summary`)).json()) as Record<string, any>;
    assert.equal(bad.agreement.ok, false, 'disagreement');
    const failed = (bad.agreement.checks as Array<{ name: string; ok: boolean }>).filter((c) => c.ok === false).map((c) => c.name);
    assert.deepEqual(failed.sort(), ['CSV sidecar rows = database rows', 'database rows = recording frame count', 'frame indexes 1..N without holes'].sort());
    const row = syn.rows[76]!;
    b.store.insertFrames([row]);
  });

  it('an hour at 120 fps: every drop kept in 1200 buckets, answered fast', async () => {
    const t0 = performance.now();
    const res = await b.api(`/api/recordings/${long.recordingId}/series?width=1200`);
    const ms = performance.now() - t0;
    const s = (await res.json()) as Series;
    const expected = (b.db.prepare('SELECT SUM(missing_before) AS m, COUNT(*) AS n FROM frames WHERE recording_id = ? AND missing_before > 0').get(long.recordingId)) as { m: number; n: number };
    assert.equal(s.buckets.t.length, 1200, 'one bucket per pixel (no empty ones at 120 fps)');
    assert.equal(s.buckets.missing.reduce((a, n) => a + n, 0), expected.m, 'total missing');
    assert.equal(s.drops.length, expected.n, 'every drop listed');
    for (const d of s.drops) assert.ok(s.buckets.missing[d.bucket]! >= d.missing && s.buckets.interval_max_ms[d.bucket]! > 1.5 * 8.333, `drop at ${d.frame_index}`);
    assert.equal(s.buckets.frames.reduce((a, n) => a + n, 0), 432_000);
    assert.equal(s.markers[0]!.frame_index, 200_000, 'marker on its frame (binary search over the key)');
    // The benchmark measures this unloaded (bench/quality-series.ts); here 2 cores are shared with other test files.
    assert.ok(ms < 5000, `series of 432k frames took ${ms.toFixed(0)} ms`);
    process.stdout.write(`# series of 432000 frames at width 1200: ${ms.toFixed(0)} ms\n`);
  });

  it('the session rows flag the trial with drops', async () => {
    const q = (await (await b.api(`/api/sessions/${syn.sessionId}/quality`)).json()) as { trials: Array<{ number: number; dropped: number; dropped_percent: number; markers: number; duration_s: number; frames: number }> };
    assert.deepEqual(q.trials.map((t) => [t.number, t.frames, t.dropped, t.markers]), [[1, 300, 0, 0], [2, 600, 11, 3]]);
    assert.ok(Math.abs(q.trials[0]!.duration_s - 299 / 30) < 0.01, `duration ${q.trials[0]!.duration_s}`);
    const r = (await (await b.api(`/api/sessions/${real.sessionId}/quality`)).json()) as { trials: Array<{ dropped: number; markers: number }> };
    assert.deepEqual(r.trials.map((t) => [t.dropped, t.markers]), [[0, 2]]);
  });

  it('refuses bad queries with the field named, and unknown ids with 404', async () => {
    const cases: Array<[string, number, string]> = [
      ['/api/recordings/1/series?width=5', 400, 'query.width'],
      ['/api/recordings/1/series?width=100000', 400, 'query.width'],
      ['/api/recordings/1/series?width=abc', 400, 'query.width'],
      ['/api/recordings/1/series?width=10.5', 400, 'query.width'],
      ['/api/recordings/1/series?from_us=5', 400, 'query.to_us'],
      ['/api/recordings/1/series?from_us=9&to_us=5', 400, 'query.to_us'],
      ['/api/recordings/1/series?from_us=1e9&to_us=2e9', 400, 'query.from_us'],
      ['/api/recordings/1/series?widht=100', 400, 'query.widht'],
      ['/api/recordings/1/series?width=100&width=200', 400, 'query.width'],
      ['/api/recordings/0/series', 400, 'params.id'],
      ['/api/recordings/999/series', 404, 'params.id'],
      ['/api/recordings/999/summary', 404, 'params.id'],
      ['/api/recordings/1/summary?x=1', 400, 'query.x'],
      ['/api/sessions/999/quality', 404, 'params.id'],
      ['/api/sessions/abc/quality', 400, 'params.id'],
    ];
    for (const [p, status, field] of cases) {
      const r = await b.api(p);
      const body = (await r.json()) as { field?: string };
      assert.equal(r.status, status, `${p}: ${JSON.stringify(body)}`);
      assert.equal(body.field, field, `${p} field`);
    }
    for (const p of ['/api/recordings/1/series', '/api/recordings/1/summary', '/api/sessions/1/quality']) {
      assert.equal((await b.api(p, { auth: false })).status, 401, `${p} needs the token`);
      assert.equal((await b.api(`${p}?token=${TOKEN}`, { auth: false })).status, 401, `${p}: ?token= is for links only`);
    }
  });

  it('serves the plotting library from the box, nothing else from node_modules', async () => {
    const js = await b.api('/vendor/uplot/uPlot.iife.min.js', { auth: false });
    assert.equal(js.status, 200);
    assert.match(js.headers.get('content-type') ?? '', /javascript/);
    assert.match(await js.text(), /uPlot/);
    const css = await b.api('/vendor/uplot/uPlot.min.css', { auth: false });
    assert.equal(css.status, 200);
    assert.match(css.headers.get('content-type') ?? '', /text\/css/);
    for (const p of ['/vendor/uplot/package.json', '/vendor/uplot/uPlot.cjs.js', '/vendor/uplot/..%2fpackage.json', '/vendor/express/index.js']) assert.equal((await b.api(p, { auth: false })).status, 404, p);
  });
});
