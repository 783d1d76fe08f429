import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { buildProbeResult } from '../../src/cameras/probe.ts';
import { CSV_HEADER } from '../../src/timing/csv-format.ts';
import { sleep, startHttpBox, type HttpBox } from '../helpers/box.ts';
import { repoRoot } from '../helpers/cli.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { skipUnlessCi } from '../helpers/requires.ts';

const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'web-page-token-0123456789';
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing (apt-get install chromium)`;

describe('web page in Chromium', { skip: skipUnlessCi(skip) }, () => {
  let b: HttpBox;
  let ctx: BrowserContext;
  let page: Page;
  const consoleErrors: string[] = [];

  before(async () => {
    b = await startHttpBox({ token: TOKEN });
    // The test camera has no controls; give it the controls a real Pi camera reported (recorded v4l2-ctl output),
    // so the page has sliders, toggles and menus to build.
    const ctrls = readFileSync(path.join(repoRoot, 'hw-fixtures/v4l2/rpi-camera-bcm2835-v4l2-legacy/list-ctrls-menus.txt'), 'utf8');
    b.box.cameras.get('cam0')!.capabilities!.controls = buildProbeResult('', ctrls).controls;
    ctx = await chromium.launchPersistentContext(tmpDir('rigcam-chromium-'), {
      executablePath: CHROMIUM,
      headless: true,
      acceptDownloads: true,
      viewport: { width: 412, height: 915 }, // a phone
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    page = ctx.pages()[0] ?? (await ctx.newPage());
    page.setDefaultTimeout(10_000);
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(e.message));
  });

  after(async () => {
    await ctx?.close();
    await b?.close();
  });

  it('asks for the token, then shows the camera with a live preview that changes', async () => {
    await page.goto(b.url);
    const dialog = page.locator('#token-dialog');
    await dialog.waitFor({ state: 'visible' });
    await page.fill('#token-input', TOKEN);
    await page.click('#token-ok');
    await dialog.waitFor({ state: 'hidden' });
    assert.equal(await page.evaluate(() => localStorage.getItem('rigcam.token')), TOKEN, 'token stored');

    const img = page.getByTestId('preview-cam0');
    await page.waitForFunction(() => {
      const i = document.querySelector<HTMLImageElement>('img.preview');
      return Boolean(i && i.complete && i.naturalWidth > 0);
    });
    assert.equal(await img.evaluate((i: HTMLImageElement) => i.naturalWidth), 320, 'preview width');
    const first = await img.screenshot();
    await sleep(1200); // two GOPs of the test camera
    const second = await img.screenshot();
    assert.ok(!first.equals(second), 'the preview image changed');
    await page.waitForFunction(() => /fps/.test(document.querySelector('.camera .stats')?.textContent ?? ''));
    assert.match(await page.locator('.camera .stats').textContent() ?? '', /ready · \d+\.\d fps · not recording · 0 dropped/, 'camera stats');
    assert.match(await page.getByTestId('disk').textContent() ?? '', /^disk: [\d.]+ [kMGT]?B free( · ~\d+ min of recording left)?$/, 'disk');
  });

  it('builds the camera controls from the probed controls and sends control_change', async () => {
    const card = page.locator('.camera[data-camera="cam0"]');
    await card.locator('summary').click();
    assert.equal(await card.locator('.control input[type=range]').count(), 1, 'int → slider');
    assert.equal(await card.locator('.control input[type=checkbox]').count(), 1, 'bool → toggle');
    assert.equal(await card.locator('.control select').count(), 2, 'menu, intmenu → select');
    assert.deepEqual(await card.locator('.control[data-control=auto_exposure] option').allTextContents(), ['Auto Mode', 'Manual Mode'], 'menu items');
    await card.locator('.control[data-control=auto_exposure] select').selectOption('1');
    // The test source has no device to set: the runtime's refusal comes back to the control.
    await card.locator('.control[data-control=auto_exposure] .err').filter({ hasText: /no adjustable controls/ }).waitFor();
  });

  it('starts a trial, shows it recording, marks it, and stops it', async () => {
    await page.fill('#session', 'web-s1');
    await page.fill('#label', 'web trial');
    await page.click('#start');
    await page.getByTestId('rec-state').filter({ hasText: /recording · trial 1/ }).waitFor();
    await page.locator('.camera.recording').waitFor();
    await page.getByTestId('trial-info').filter({ hasText: /Session web-s1, trial 1 “web trial”/ }).waitFor();
    await page.waitForFunction(() => /REC [1-9]\d* frames/.test(document.querySelector('.camera .stats')?.textContent ?? ''));
    assert.equal((b.box.status() as { recording: boolean }).recording, true, 'the box records');

    await page.fill('#marker-label', 'lever press');
    await page.click('#mark');
    await page.getByTestId('message').filter({ hasText: /Marker “lever press” in trial 1/ }).waitFor();
    await page.getByTestId('log').filter({ hasText: /marker .*label=lever press/ }).waitFor();
    await sleep(500);
    await page.click('#stop');
    await page.getByTestId('rec-state').filter({ hasText: /^idle$/ }).waitFor();
    await page.getByTestId('message').filter({ hasText: /Stopped trial 1: \d+ frames/ }).waitFor();
    assert.equal((b.box.status() as { recording: boolean }).recording, false, 'the box stopped');
    await page.getByTestId('log').filter({ hasText: /recording_stopped/ }).waitFor();
  });

  it('lists the trial under its session and downloads its frame CSV', async () => {
    const sessions = page.getByTestId('sessions');
    await sessions.locator('summary', { hasText: 'web-s1 — 1 trial' }).waitFor();
    const trial = sessions.locator('.trial[data-trial="1"]');
    await trial.filter({ hasText: /Trial 1 “web trial” — complete/ }).waitFor();
    const rec = (await (await b.api('/api/sessions/1')).json()) as { trials: Array<{ id: number }> };
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId(`csv-${rec.trials[0]!.id}-cam0`).click()]);
    assert.equal(download.suggestedFilename(), 'web-s1_trial001_cam0_frames.csv', 'download name');
    const file = await download.path();
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    assert.equal(lines[0], `${CSV_HEADER},markers`, 'CSV header');
    assert.ok(lines.length > 5, `CSV rows: ${lines.length}`);
    assert.equal(lines.filter((l) => l.endsWith(',lever press')).length, 1, 'the marker is on one frame');
  });

  it('stops the preview decoder when the page goes away, and logged no script errors', async () => {
    assert.equal(b.box.listenerCount('status') > 0, true, 'page subscribed to events');
    await page.close();
    let state = { running: true };
    for (let i = 0; i < 40 && state.running; i++) {
      await sleep(50);
      state = ((await (await b.api('/api/cameras/cam0')).json()) as { preview: { running: boolean } }).preview;
    }
    assert.equal(state.running, false, 'no decoder once nobody watches');
    assert.deepEqual(consoleErrors.filter((e) => !/Failed to load resource.*(401|409)/.test(e)), [], 'console errors');
  });
});
