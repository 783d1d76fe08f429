import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { tmpDir } from '../helpers/tmp.ts';
import {
  api,
  buildOfflineRelease,
  checkRecording,
  guestMonoUs,
  latestRecording,
  LINE,
  PERIOD_US,
  playbook,
  pulse,
  recordingNow,
  stopAnsibleMasters,
  waitBoxReady,
  waitFor,
} from './box.ts';
import { ensureImage, logTiming, RigVm, sleep } from './vm.ts';

/**
 * Rig scenarios that fail today because of the product, not the rig: `npm run test:rig:pending`
 * runs them, `npm run test:rig` (and CI) does not yet. Move a scenario to scenarios.rig.ts when
 * its issue is fixed.
 *  5. power cut (issue 21: the trial/recording rows are not synced at start, so a cut loses them);
 *  7. stop on the exact frame (issue 14: frames captured after a GPIO stop edge are written).
 */

let vm: RigVm;
let work = '';

function scenario(name: string, fn: () => Promise<void>, timeoutMs = 600_000): void {
  it(name, { timeout: timeoutMs }, async () => {
    const t0 = Date.now();
    try {
      await fn();
    } catch (err) {
      process.stderr.write(`\n${await vm.diagnostics(true).catch((e: Error) => `(no diagnostics: ${e.message})`)}\n`);
      throw err;
    } finally {
      logTiming(`scenario "${name}"`, Date.now() - t0);
    }
  });
}

describe('virtual rig: pending scenarios', { timeout: 45 * 60_000 }, () => {
  before(async () => {
    work = tmpDir('rigcam-rig-');
    const image = ensureImage();
    const release = buildOfflineRelease(path.join(work, 'release'));
    vm = new RigVm(image, path.join(work, 'vm'));
    await vm.boot();
    try {
      const install = playbook(vm, release);
      assert.equal(install.status, 0, install.output);
      await waitBoxReady(vm);
    } catch (err) {
      process.stderr.write(`\n${await vm.diagnostics()}\n`);
      throw err;
    }
  });

  after(async () => {
    if (vm) {
      stopAnsibleMasters(vm);
      await vm.destroy();
    }
  });

  scenario('GPIO trigger time is the edge, not the end of the kernel\'s software debounce', async () => {
    // With debounce_ms (default 5) on a chip without hardware debounce (gpio-sim here, the Pi's pinctrl too),
    // the kernel stamps the event when the debounce period ends: rigcam takes that as the edge time.
    const start = await pulse(vm, LINE.start, 250);
    await waitFor('recording', () => recordingNow(vm), 15_000, 200);
    await sleep(1000);
    await pulse(vm, LINE.stop, 250);
    await waitFor('not recording', async () => !(await recordingNow(vm)), 20_000, 200);
    const rec = await latestRecording(vm);
    const late = rec.trigger_mono_us! - start.rise.after;
    assert.ok(rec.trigger_mono_us! >= start.rise.before && late <= 0, `trigger stamped ${(late / 1000).toFixed(1)} ms after the edge's write returned`);
  });

  scenario('stop on the exact frame: a GPIO stop edge with min_pulse_ms 150 leaves no frame at or after the edge', async () => {
    const start = await pulse(vm, LINE.start, 250);
    await waitFor('recording', () => recordingNow(vm), 15_000, 200);
    await sleep(3000);
    // Held 300 ms: the stop is acted on 150 ms after its edge, but must cut at the edge.
    const stop = await pulse(vm, LINE.stop, 300);
    await waitFor('not recording', async () => !(await recordingNow(vm)), 20_000, 200);
    const rec = await latestRecording(vm);
    assert.ok(rec.trigger_mono_us! >= start.rise.before && rec.trigger_mono_us! <= start.rise.after);
    const c = await checkRecording(vm, rec.id);
    const after = c.frames.filter((f) => f.capture_us >= stop.rise.after);
    assert.deepEqual(
      after.map((f) => `frame ${f.frame_index} captured ${((f.capture_us - stop.rise.after) / 1000).toFixed(1)} ms after the edge`),
      [],
      'no frame captured at or after the stop edge',
    );
    const last = c.frames[c.frames.length - 1];
    assert.ok(last.capture_us >= stop.rise.before - 1.5 * PERIOD_US, `every frame before the edge is in: the last is ${(stop.rise.before - last.capture_us) / 1000} ms before it`);
  });

  scenario('power cut mid-trial: after the next boot the trial is in the database and API, ≤ 1 s lost, file = DB = CSV', async () => {
    // Metadata stays in the page cache until something syncs it: what a power cut then loses is
    // exactly what rigcam did not sync itself.
    await vm.run('sysctl -q -w vm.dirty_writeback_centisecs=0 vm.dirty_expire_centisecs=360000');
    const started = await api<{ data: { trial: number } }>(vm, 'POST', '/api/trials/start', { session: 'rigpower', label: 'cut' });
    assert.equal(started.status, 200, JSON.stringify(started.json));
    await sleep(5000);
    const cutMono = await guestMonoUs(vm);
    const measuredAt = Date.now();
    await vm.powerCut();
    const cutAt = cutMono + (Date.now() - measuredAt) * 1000;
    await vm.boot();
    await waitBoxReady(vm);

    const sessions = await api<{ sessions: Array<{ id: number; name: string }> }>(vm, 'GET', '/api/sessions');
    assert.equal(sessions.status, 200);
    const s = sessions.json.sessions.find((x) => x.name === 'rigpower');
    assert.ok(s, `session rigpower is not in the API after the cut: ${JSON.stringify(sessions.json).slice(0, 2000)}`);
    const rec = await latestRecording(vm, 'rigpower');
    assert.equal(rec.state, 'interrupted');
    const c = await checkRecording(vm, rec.id);
    const last = c.frames[c.frames.length - 1];
    const lostS = (cutAt - last.capture_us) / 1e6;
    process.stderr.write(`rig: power cut lost ${lostS.toFixed(3)} s of video (${c.fileFrames} frames kept)\n`);
    assert.ok(lostS <= 1.0 + PERIOD_US / 1e6, `${lostS.toFixed(3)} s of video lost (> 1 s)`);
    // The session goes on: the next trial starts.
    const next = await api(vm, 'POST', '/api/trials/start', { session: 'rigpower' });
    assert.equal(next.status, 200, JSON.stringify(next.json));
    await sleep(1500);
    assert.equal((await api(vm, 'POST', '/api/trials/stop', {})).status, 200);
  });
});
