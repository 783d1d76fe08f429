import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { sleep, startHttpBox, type HttpBox } from '../helpers/box.ts';
import { makeSyntheticRecording, type Synthetic } from '../helpers/synthetic-recording.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { skipUnlessCi } from '../helpers/requires.ts';

const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'quality-page-token-0123456789';
/** A marker label is user input: it must show as text, never as markup. */
const HOSTILE = '<img src=x onerror="window.pwned=1">';
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing (apt-get install chromium)`;

interface SeriesJs {
  origin_us: number;
  from_us: number;
  buckets: { t: number[]; missing: number[]; first_frame: number[] };
  drops: Array<{ frame_index: number; bucket: number; t: number }>;
  markers: Array<{ label: string; frame_index: number; t: number }>;
}

/** frames.csv as downloaded: frame index → missing_before and markers. */
async function csvOf(b: HttpBox, id: number): Promise<Array<{ frame: number; missing: number; markers: string[] }>> {
  const text = await (await b.api(`/api/recordings/${id}/frames.csv`)).text();
  const [head, ...lines] = text.trimEnd().split('\n');
  const cols = head!.split(',');
  return lines.map((l) => {
    const c = l.split(',');
    const m = c[cols.indexOf('markers')] ?? '';
    return { frame: Number(c[cols.indexOf('frame_index')]), missing: Number(c[cols.indexOf('missing_before')]), markers: m ? m.split(';') : [] };
  });
}

describe('quality views in Chromium', { skip: skipUnlessCi(skip) }, () => {
  let b: HttpBox;
  let ctx: BrowserContext;
  let page: Page;
  let syn: Synthetic;
  let clean: Synthetic;
  const shots = tmpDir('rigcam-quality-shots-');
  const consoleErrors: string[] = [];

  before(async () => {
    b = await startHttpBox({ token: TOKEN, extra: { recording: { stop_wait_ms: 1000, preroll_seconds: 0.5 } } });
    // Session "web-q": a clean trial and one with drops, a pause, pre-roll and markers (the test camera never drops).
    clean = makeSyntheticRecording(b.store, b.root, { session: 'web-q', fps: 30, frames: 450, prerollFrames: 15, markers: [{ label: HOSTILE, atFrame: 40 }] });
    syn = makeSyntheticRecording(b.store, b.root, {
      session: 'web-q', fps: 30, frames: 900, prerollFrames: 15, jitterUs: 300,
      drops: new Map([[120, 1], [121, 3], [400, 2], [700, 6], [880, 1]]),
      pauses: new Map([[500, 1_500_000]]),
      markers: [{ label: 'tone', atFrame: 200 }, { label: 'lever', atFrame: 400 }, { label: 'reward', atFrame: 650 }],
    });
    makeSyntheticRecording(b.store, b.root, { session: 'web-q', fps: 30, frames: 300 });
    ctx = await chromium.launchPersistentContext(tmpDir('rigcam-chromium-'), {
      executablePath: CHROMIUM,
      headless: true,
      acceptDownloads: true,
      viewport: { width: 1024, height: 800 },
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    page = ctx.pages()[0] ?? (await ctx.newPage());
    page.setDefaultTimeout(15_000);
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(e.message));
    await page.goto(b.url);
    await page.locator('#token-dialog').waitFor({ state: 'visible' });
    await page.fill('#token-input', TOKEN);
    await page.click('#token-ok');
  });

  after(async () => {
    await ctx?.close();
    await b?.close();
  });

  it('session view: one row per trial, the trial with drops flagged', async () => {
    const sessions = page.getByTestId('sessions');
    await sessions.locator('summary', { hasText: 'web-q — 3 trials' }).waitFor();
    const q2 = sessions.getByTestId('quality-2');
    await q2.waitFor();
    assert.equal(await q2.getAttribute('data-dropped'), '13', 'drops of trial 2');
    assert.match((await q2.getAttribute('class')) ?? '', /\bq-bad\b/, 'trial 2 (13 of 913 frames lost, 1.4 %) is flagged bad');
    assert.match(await q2.textContent() ?? '', /13 dropped \(1\.42 %\) · 3 markers/, 'trial 2 text');
    for (const n of [1, 3]) {
      const q = sessions.getByTestId(`quality-${n}`);
      assert.match((await q.getAttribute('class')) ?? '', /\bq-ok\b/, `trial ${n} clean`);
      assert.equal(await q.getAttribute('data-dropped'), '0');
    }
    // Duration bars scale with the trial: trial 2 (the longest, with its pause) is the full width.
    const widths = await sessions.locator('.quality .qbar span').evaluateAll((els) => els.map((e) => (e as HTMLElement).getBoundingClientRect().width));
    assert.equal(widths.length, 3);
    assert.ok(widths[1]! > widths[0]! && widths[0]! > widths[2]!, `bar widths ${widths}`);
    const shot = path.join(shots, 'session-view.png');
    await page.locator('#sessions-panel').screenshot({ path: shot });
    process.stdout.write(`# screenshot of the session view: ${shot}\n`);
    if (process.env.RIGCAM_DOCS_SCREENSHOT) copyFileSync(shot, process.env.RIGCAM_DOCS_SCREENSHOT.replace(/\.png$/, '-session.png'));
  });

  it('recording view: the timeline shows the drops and markers where the CSV says', async () => {
    await page.getByTestId(`plot-${syn.trialId}-cam0`).click();
    await page.waitForFunction((id) => document.getElementById('recording-panel')?.dataset.ready === String(id), syn.recordingId);
    assert.match(page.url(), new RegExp(`#rec/${syn.recordingId}$`), 'linkable view');
    const csv = await csvOf(b, syn.recordingId);
    const csvDrops = csv.filter((r) => r.missing > 0).map((r) => [r.frame, r.missing]);
    assert.deepEqual(csvDrops, [[120, 1], [121, 3], [400, 2], [700, 6], [880, 1]], 'the CSV has the injected drops');
    const csvMarkers = csv.filter((r) => r.markers.length).map((r) => [r.markers.join(';'), r.frame]);

    // The chart's own data: the drop series is set exactly on the buckets holding the CSV's drop frames.
    const chart = await page.evaluate(() => {
      const r = (window as unknown as { rigcam: { recording: { chart: { data: Array<Array<number | null>> }; series: SeriesJs } } }).rigcam.recording;
      return { data: r.chart.data, series: r.series };
    });
    const s = chart.series;
    const bucketOf = (frame: number): number => s.buckets.first_frame.filter((f) => f <= frame).length - 1;
    const dropBuckets = [...new Set(csvDrops.map(([f]) => bucketOf(f!)))].sort((x, y) => x - y);
    const drawn = chart.data[3]!.map((v, i) => (v === null ? -1 : i)).filter((i) => i >= 0);
    assert.deepEqual(drawn, dropBuckets, 'drop points on exactly the buckets of the CSV drops');
    assert.equal(s.buckets.missing.reduce((a, n) => a + n, 0), 13, 'missing in the chart data');
    assert.deepEqual(s.markers.map((m) => [m.label, m.frame_index]), csvMarkers, 'markers on the CSV frames');

    // The DOM lists say the same.
    const dropLis = await page.getByTestId('rec-drops').locator('li[data-frame]').evaluateAll((els) => els.map((e) => Number((e as HTMLElement).dataset.frame)));
    assert.deepEqual(dropLis, csvDrops.map(([f]) => f), 'drop list');
    const markerLis = await page.getByTestId('rec-markers').locator('li').allTextContents();
    assert.deepEqual(markerLis.map((t) => t.split(' at ')[0]), csvMarkers.map(([l]) => l), 'marker list');
    for (const [l, f] of csvMarkers) assert.ok(markerLis.some((t) => t.startsWith(`${l} at`) && t.endsWith(`(frame ${f})`)), `${l} on frame ${f}`);

    // And the pixels: a red drop point at each drop bucket, a marker-coloured line at each marker.
    // (A string: functions compiled by tsx carry helpers the page does not have.)
    const pixels = (await page.evaluate(`(() => {
      const u = window.rigcam.recording.chart;
      const s = window.rigcam.recording.series;
      const c = u.ctx;
      function near(x, y, r, pred) {
        const img = c.getImageData(Math.round(x) - r, Math.round(y) - r, 2 * r + 1, 2 * r + 1).data;
        for (let i = 0; i < img.length; i += 4) if (pred(img.subarray(i, i + 4))) return true;
        return false;
      }
      function red(p) { return p[3] > 200 && p[0] > 150 && p[1] < 90 && p[2] < 90; }
      function orange(p) { return p[3] > 150 && p[0] > 180 && p[1] > 60 && p[1] < 140 && p[2] < 60; }
      const drops = u.data[3].map((v, i) => (v === null ? null : near(u.valToPos(u.data[0][i], 'x', true), u.valToPos(v, 'y', true), 3, red))).filter((v) => v !== null);
      const midY = u.bbox.top + u.bbox.height * 0.6;
      const markers = s.markers.map((m) => near(u.valToPos(m.t, 'x', true), midY, 3, orange));
      return { drops, markers };
    })()`)) as { drops: boolean[]; markers: boolean[] };
    assert.ok(pixels.drops.length > 0 && pixels.drops.every(Boolean), `red drop points drawn: ${pixels.drops}`);
    assert.deepEqual(pixels.markers, [true, true, true], 'marker lines drawn');

    const summary = page.getByTestId('rec-summary');
    assert.match(await summary.textContent() ?? '', /Frames900 in/, 'summary frames');
    assert.match(await summary.textContent() ?? '', /Dropped13 \(1\.42\d* %\)/, 'summary drops');
    assert.match(await summary.textContent() ?? '', /file, CSV and database agree/, 'agreement');
    assert.match(await summary.textContent() ?? '', /pause 1[56]\d\d\.\d ms/, 'the pause is a gap');
    const shot = path.join(shots, 'recording-view.png');
    await page.getByTestId('recording-panel').screenshot({ path: shot });
    process.stdout.write(`# screenshot of the recording view: ${shot}\n`);
    if (process.env.RIGCAM_DOCS_SCREENSHOT) copyFileSync(shot, process.env.RIGCAM_DOCS_SCREENSHOT);
  });

  it('zooms by dragging (the box sends the span in detail), resets, and exports a PNG', async () => {
    const over = page.locator('#rec-chart .u-over');
    const box = (await over.boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.1, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.3, box.y + box.height / 2, { steps: 5 });
    await page.mouse.up();
    await page.waitForFunction(() => {
      const r = (window as unknown as { rigcam: { recording: { series: SeriesJs; full: SeriesJs } } }).rigcam.recording;
      return r.series !== r.full && r.series.from_us > r.full.from_us;
    });
    const zoomed = await page.evaluate(() => (window as unknown as { rigcam: { recording: { series: SeriesJs; full: SeriesJs } } }).rigcam.recording.series.buckets.t.length);
    assert.ok(zoomed > 50, `zoomed span has its own buckets: ${zoomed}`);
    await page.click('#rec-reset');
    await page.waitForFunction(() => {
      const r = (window as unknown as { rigcam: { recording: { series: SeriesJs; full: SeriesJs } } }).rigcam.recording;
      return r.series === r.full;
    });
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#rec-png')]);
    assert.equal(download.suggestedFilename(), `rigcam-recording-${syn.recordingId}.png`);
    const png = readFileSync(await download.path());
    assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'a PNG');
    assert.ok(png.length > 5000, `PNG size ${png.length}`);
  });

  it('reads on a phone, and shows live fps and latency per camera', async () => {
    await page.setViewportSize({ width: 412, height: 915 });
    await sleep(400);
    const w = await page.evaluate(() => (window as unknown as { rigcam: { recording: { chart: { width: number } } } }).rigcam.recording.chart.width);
    assert.ok(w <= 412 && w >= 260, `chart fits the phone: ${w}`);
    const shot = path.join(shots, 'recording-view-phone.png');
    await page.getByTestId('recording-panel').screenshot({ path: shot });
    process.stdout.write(`# phone screenshot: ${shot}\n`);
    if (process.env.RIGCAM_DOCS_SCREENSHOT) copyFileSync(shot, process.env.RIGCAM_DOCS_SCREENSHOT.replace(/\.png$/, '-phone.png'));
    // Live: telemetry every 250 ms feeds a chart per camera.
    await page.waitForFunction(() => {
      const l = (window as unknown as { rigcam: { live: Record<string, { chart: unknown; fps: number[] } | undefined> } }).rigcam.live.cam0;
      return Boolean(l?.chart) && l!.fps.length >= 4;
    });
    const fps = await page.evaluate(() => (window as unknown as { rigcam: { live: Record<string, { fps: number[]; latency: Array<number | null> }> } }).rigcam.live.cam0!.fps);
    assert.ok(fps.slice(-3).every((f) => f > 10 && f < 20), `live capture fps of a 15 fps camera: ${fps}`);
    assert.equal(await page.getByTestId('live-cam0').locator('canvas').count(), 1, 'live chart drawn');
    // A label that is markup shows as text in the list and on the plot, and runs nothing.
    await page.evaluate((id) => (location.hash = `#rec/${id}`), clean.recordingId);
    await page.waitForFunction((id) => document.getElementById('recording-panel')?.dataset.ready === String(id), clean.recordingId);
    const li = (await page.getByTestId('rec-markers').locator('li').first().textContent()) ?? '';
    assert.ok(li.startsWith(`${HOSTILE} at 0.8`) && li.endsWith('(frame 40)'), `label as text: ${li}`);
    assert.equal(await page.getByTestId('recording-panel').locator('img').count(), 0, 'no element made from the label');
    await sleep(300);
    assert.equal(await page.evaluate(() => (window as unknown as { pwned?: number }).pwned), undefined, 'nothing ran');
    await page.click('#rec-close');
    assert.equal(await page.getByTestId('recording-panel').isHidden(), true, 'closed');
    assert.deepEqual(consoleErrors.filter((e) => !/Failed to load resource.*(401|409)/.test(e)), [], 'console errors');
  });
});
