// A camera whose source process stays alive but stops delivering (issue 21): the pipeline's supervisor kills it
// as stalled within the limit and starts it again; frames come back in a new run.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { silentLogger } from '../../src/log/logger.ts';
import { CameraPipeline, sourceStallMs, type SourceExit } from '../../src/pipeline/camera-pipeline.ts';
import { wallMinusMonoUs } from '../../src/clock.ts';
import { testSourceSpec } from '../../src/sources/test-source.ts';

it('the stall limit is a few frame periods plus a margin', () => {
  assert.equal(sourceStallMs(30), 5134);
  assert.equal(sourceStallMs(1), 9000);
  assert.ok(sourceStallMs(120) > 5000);
});

it('a source that stops writing while alive (SIGSTOP) is killed as stalled and restarted', async () => {
  const stallMs = 1500;
  const pipeline = new CameraPipeline('cam0', () => testSourceSpec({ width: 160, height: 120, fps: 25, gopSeconds: 1, bitrateKbps: 300, wallMinusMonoUs: wallMinusMonoUs() }), {
    backoff: { initialMs: 100, maxMs: 1000 },
    ringWindowUs: 2e6,
    ringMaxBytes: 8 << 20,
    log: silentLogger(),
    stallMs,
  });
  const runsWithFrames = new Set<number>();
  pipeline.on('frame', (f) => runsWithFrames.add(f.run));
  const exits: SourceExit[] = [];
  pipeline.on('exit', (e) => exits.push(e));
  const until = async (what: string, ok: () => boolean, ms: number): Promise<void> => {
    const end = Date.now() + ms;
    while (!ok()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  try {
    pipeline.start();
    await until('frames', () => runsWithFrames.size > 0, 30_000);
    const run = pipeline.runNumber;
    const pid = pipeline.sourcePid!;
    exits.length = 0;
    process.kill(pid, 'SIGSTOP');
    const stoppedAt = Date.now();
    await until('the stall exit', () => exits.length > 0, 10_000);
    const seenAfter = Date.now() - stoppedAt;
    const exit = exits.at(-1)!;
    assert.equal(exit.run, run);
    assert.equal(exit.problem, 'stalled', exit.message);
    assert.ok(seenAfter >= stallMs - 300 && seenAfter < stallMs + 2500, `stall seen ${seenAfter} ms after the source stopped`);
    assert.notEqual(exit.restartInMs, null);
    await until('frames of the next run', () => [...runsWithFrames].some((r) => r > run), 30_000);
    assert.notEqual(pipeline.sourcePid, pid);
  } finally {
    await pipeline.stop();
  }
});
