// The one child-process supervisor, against real child processes (small shell scripts).
import assert from 'node:assert/strict';
import { chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, it } from 'node:test';
import { pino } from 'pino';
import { silentLogger, type Logger } from '../../src/log/logger.ts';
import { Backoff } from '../../src/supervise/backoff.ts';
import { ChildSupervisor, type ChildExit, type ChildSpec } from '../../src/supervise/child-supervisor.ts';
import { tmpDir } from '../helpers/tmp.ts';

const bin = tmpDir('rigcam-supervise-');
function script(name: string, body: string): string {
  const p = path.join(bin, name);
  writeFileSync(p, `#!/bin/sh\n${body}\n`);
  chmodSync(p, 0o755);
  return p;
}

function nextExit(s: ChildSupervisor): Promise<ChildExit> {
  return new Promise((r) => s.once('exit', r));
}

function captureLog(): { log: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino(
    { level: 'debug' },
    new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
        done();
      },
    }),
  );
  return { log, lines };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const spec = (command: string, device?: string): ChildSpec => ({ command, args: [], device });

describe('backoff', () => {
  it('doubles up to the cap, jittered downwards only, and resets after a healthy run', () => {
    let r = 0.999;
    const b = new Backoff({ initialMs: 100, maxMs: 800, healthyAfterMs: 5000, jitter: 0.25 }, () => r);
    const worst = [100, 200, 400, 800, 800].map(() => b.next(10));
    assert.deepEqual(worst, [75, 150, 300, 600, 600], 'full jitter takes 25 % off, never more');
    r = 0;
    assert.equal(b.next(10), 800, 'no jitter: the capped delay itself');
    assert.equal(b.next(5000), 100, 'a healthy run starts over');
    assert.equal(new Backoff({ initialMs: 1000, jitter: 0.2 }, () => 0.99999).next(), 800, 'the rounded floor is reachable');
    assert.throws(() => new Backoff({ jitter: 1 }), /jitter/);
  });

  it('spreads delays with the default jitter', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 50; i++) {
      const d = new Backoff({ initialMs: 1000 }).next();
      // Rounded to whole ms, so the floor 0.8·d itself can come out (random() just under 1).
      assert.ok(d >= 800 && d <= 1000, `delay ${d}`);
      seen.add(d);
    }
    assert.ok(seen.size > 5, 'delays differ between supervisors');
  });
});

describe('child supervisor', () => {
  // Every supervisor a test made is stopped after it, also when an assertion failed half-way: a supervisor left
  // restarting its child keeps this file's process alive for good (the runner then waits on it forever).
  const made: ChildSupervisor[] = [];
  const supervise = (o: ConstructorParameters<typeof ChildSupervisor>[0]): ChildSupervisor => {
    const s = new ChildSupervisor(o);
    made.push(s);
    return s;
  };
  afterEach(async () => {
    await Promise.all(made.splice(0).map((s) => s.stop()));
  });

  it('a missing binary is classified, never spawned, and retried with growing, capped back-off', async () => {
    const s = supervise({ what: 'test', makeSpec: () => spec(path.join(bin, 'no-such-tool')), backoff: { initialMs: 20, maxMs: 80, jitter: 0 }, log: silentLogger() });
    s.start();
    const exits: ChildExit[] = [];
    for (let i = 0; i < 4; i++) exits.push(await nextExit(s));
    await s.stop();
    assert.equal(exits[0]!.problem, 'missing_command');
    assert.match(exits[0]!.message, /no-such-tool is not installed/);
    assert.equal(exits[0]!.run, 0, 'nothing ran');
    assert.deepEqual(exits.map((e) => e.restartInMs), [20, 40, 80, 80]);
    assert.equal(s.runCount, 0);
  });

  it('a command found on the PATH of the child environment only is found', async () => {
    script('only-on-child-path', 'exit 0');
    const s = supervise({ what: 'test', makeSpec: () => ({ command: 'only-on-child-path', args: [], env: { PATH: `${bin}:/usr/bin:/bin` } }), restart: false, log: silentLogger() });
    s.start();
    const e = await nextExit(s);
    assert.equal(e.problem, 'exited');
    assert.equal(e.code, 0);
    assert.equal(e.restartInMs, null, 'restart off');
  });

  it('a missing device is reported without starting the process', async () => {
    const s = supervise({ what: 'test', makeSpec: () => spec('sh', '/dev/video-nonexistent-9'), backoff: { initialMs: 1000 }, log: silentLogger() });
    s.start();
    const e = await nextExit(s);
    await s.stop();
    assert.equal(e.problem, 'missing_device');
    assert.match(e.message, /\/dev\/video-nonexistent-9 does not exist/);
  });

  it('a spec that cannot be made is a setup failure carrying the error', async () => {
    const boom = new Error('no chip');
    const s = supervise({ what: 'test', makeSpec: async () => Promise.reject(boom), backoff: { initialMs: 1000 }, log: silentLogger() });
    s.start();
    const e = await nextExit(s);
    await s.stop();
    assert.equal(e.problem, 'setup_failed');
    assert.equal(e.error, boom);
    assert.equal(e.message, 'no chip');
  });

  it('keeps the stderr tail, classifies a busy device and restarts a process that exits', async () => {
    const p = script('busy', 'echo "[video4linux2,v4l2 @ 0x1] ioctl(VIDIOC_STREAMON): Device or resource busy" >&2; exit 1');
    const s = supervise({ what: 'test', makeSpec: () => spec(p, '/dev/null'), backoff: { initialMs: 30, maxMs: 100 }, log: silentLogger() });
    const started: number[] = [];
    s.on('started', (x) => started.push(x.run));
    s.start();
    const e = await nextExit(s);
    assert.equal(e.problem, 'busy_device');
    assert.equal(e.code, 1);
    assert.equal(e.run, 1);
    assert.match(e.stderrTail.join('\n'), /VIDIOC_STREAMON/);
    assert.ok(e.restartInMs! >= 24 && e.restartInMs! <= 30, `restart in ${e.restartInMs} (30 ms jittered down by up to 20 %, rounded)`);
    await nextExit(s);
    await s.stop();
    assert.deepEqual(started, [1, 2]);
  });

  it('an exit by a signal is classified as such, with the last stderr line', async () => {
    const p = script('dies', 'echo "last words" >&2; kill -TERM $$');
    const s = supervise({ what: 'test', makeSpec: () => spec(p), restart: false, log: silentLogger() });
    s.start();
    const e = await nextExit(s);
    assert.equal(e.problem, 'signal');
    assert.equal(e.signal, 'SIGTERM');
    assert.match(e.message, /killed by SIGTERM: last words/);
  });

  it('a child alive but silent is killed as stalled within its limit and restarted', async () => {
    // Writes once, then hangs without output (a camera that stops delivering while its process lives).
    const p = script('stalls', 'echo frame; exec sleep 30');
    const s = supervise({ what: 'test', makeSpec: () => ({ ...spec(p), stallMs: 400, firstOutputMs: 2000 }), backoff: { initialMs: 50, jitter: 0 }, log: silentLogger() });
    const pids: number[] = [];
    s.on('started', (x) => pids.push(x.pid));
    const data: string[] = [];
    s.on('data', (d) => data.push(d.toString()));
    const t0 = Date.now();
    s.start();
    const e = await nextExit(s);
    const tookMs = Date.now() - t0;
    assert.equal(e.problem, 'stalled');
    assert.match(e.message, /wrote nothing for 400 ms/);
    assert.ok(tookMs >= 400 && tookMs < 1500, `stall seen after ${tookMs} ms`);
    assert.equal(alive(pids[0]!), false, 'the stalled process is gone');
    assert.deepEqual(data, ['frame\n']);
    await new Promise((r) => s.once('started', r));
    assert.equal(s.runCount, 2, 'restarted');
    await s.stop();
  });

  it('a child that writes steadily is never taken for stalled', async () => {
    const p = script('steady', 'while true; do echo tick; sleep 0.05; done');
    const s = supervise({ what: 'test', makeSpec: () => ({ ...spec(p), stallMs: 300 }), log: silentLogger() });
    const exits: ChildExit[] = [];
    s.on('exit', (e) => exits.push(e));
    s.start();
    await new Promise((r) => setTimeout(r, 1200));
    assert.equal(s.runCount, 1);
    assert.deepEqual(exits, []);
    await s.stop();
  });

  it('a child that never writes is stalled after firstOutputMs', async () => {
    const p = script('mute', 'exec sleep 30');
    const s = supervise({ what: 'test', makeSpec: () => spec(p), stallMs: 100, firstOutputMs: 500, restart: false, log: silentLogger() });
    const t0 = Date.now();
    s.start();
    const e = await nextExit(s);
    const tookMs = Date.now() - t0;
    assert.equal(e.problem, 'stalled');
    assert.ok(tookMs >= 500 && tookMs < 1500, `stall seen after ${tookMs} ms`);
  });

  it('stderr spam is logged at most N lines per window, then one summary; the tail keeps the newest', async () => {
    const p = script('spams', 'i=0; while [ $i -lt 500 ]; do echo "warning $i" >&2; i=$((i+1)); done; exit 2');
    const { log, lines } = captureLog();
    const s = supervise({ what: 'spammer', makeSpec: () => spec(p), restart: false, tailLines: 5, stderrLimit: { lines: 10, perMs: 60_000 }, log });
    const stderrEvents: string[] = [];
    s.on('stderr', (l) => stderrEvents.push(l));
    s.start();
    const e = await nextExit(s);
    const logged = lines.filter((l) => l.msg === 'spammer stderr');
    assert.equal(logged.length, 10, 'only the first 10 lines logged');
    assert.deepEqual(logged.map((l) => l.stderr), Array.from({ length: 10 }, (_, i) => `warning ${i}`));
    const summary = lines.filter((l) => typeof l.msg === 'string' && /suppressed/.test(l.msg as string));
    assert.equal(summary.length, 1, 'one summary');
    assert.equal(summary[0]!.suppressed, 490);
    assert.equal(summary[0]!.last, 'warning 499');
    assert.equal(stderrEvents.length, 500, 'the owner still sees every line');
    assert.deepEqual(e.stderrTail, ['warning 495', 'warning 496', 'warning 497', 'warning 498', 'warning 499']);
    assert.match(e.message, /failed: warning 499/);
  });

  it('the suppression summary comes at the end of the window while the child runs on', async () => {
    const p = script('burst', 'i=0; while [ $i -lt 30 ]; do echo "w $i" >&2; i=$((i+1)); done; exec sleep 30');
    const { log, lines } = captureLog();
    const s = supervise({ what: 'burst', makeSpec: () => spec(p), stderrLimit: { lines: 5, perMs: 300 }, log });
    s.start();
    await new Promise((r) => setTimeout(r, 900));
    const summary = lines.find((l) => typeof l.msg === 'string' && /25 more lines suppressed/.test(l.msg as string));
    assert.ok(summary, `summary logged while running: ${JSON.stringify(lines.map((l) => l.msg))}`);
    assert.equal(s.running, true);
    await s.stop();
  });

  it('sees the exit even when a grandchild keeps the output pipes open', async () => {
    const p = script('wrapper', 'sleep 4 & exit 3');
    const s = supervise({ what: 'test', makeSpec: () => spec(p), backoff: { initialMs: 5000 }, log: silentLogger() });
    const t0 = Date.now();
    s.start();
    const e = await nextExit(s);
    assert.equal(e.code, 3);
    assert.ok(Date.now() - t0 < 3000, `exit seen after ${Date.now() - t0} ms`);
    await s.stop();
  });

  it('stop() does not hang when a grandchild holds the pipes of a stubborn child', async () => {
    const p = script('stubborn-wrapper', 'trap "" INT TERM; sleep 30 & while true; do sleep 0.05; done');
    const s = supervise({ what: 'test', makeSpec: () => spec(p), stopSignal: 'SIGINT', log: silentLogger() });
    s.start();
    const { pid } = await new Promise<{ pid: number }>((r) => s.once('started', r));
    const exits: ChildExit[] = [];
    s.on('exit', (e) => exits.push(e));
    const t0 = Date.now();
    await s.stop(300);
    const tookMs = Date.now() - t0;
    assert.ok(tookMs < 2500, `stop took ${tookMs} ms`);
    assert.equal(alive(pid), false);
    assert.equal(s.running, false);
    assert.equal(exits[0]?.restartInMs, null, 'a stop is not followed by a restart');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(s.runCount, 1, 'not restarted after stop');
  });

  it('stop() during a pending restart cancels it; start() after stop() runs again', async () => {
    const p = script('quick', 'exit 1');
    const s = supervise({ what: 'test', makeSpec: () => spec(p), backoff: { initialMs: 200, jitter: 0 }, log: silentLogger() });
    s.start();
    await nextExit(s);
    await s.stop();
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(s.runCount, 1, 'the scheduled restart was cancelled');
    s.start();
    await nextExit(s);
    await s.stop();
    assert.equal(s.runCount, 2);
  });

  it('feeds stdin when asked (a decoder)', async () => {
    const p = script('cat', 'exec cat');
    const s = supervise({ what: 'test', makeSpec: () => spec(p), stdin: 'pipe', log: silentLogger() });
    const out: Buffer[] = [];
    s.on('data', (d) => out.push(d));
    s.start();
    await new Promise((r) => s.once('started', r));
    s.stdin!.write('hello');
    while (Buffer.concat(out).toString() !== 'hello') await new Promise((r) => setTimeout(r, 10));
    const exit = nextExit(s);
    await s.stop();
    assert.equal((await exit).restartInMs, null);
    assert.equal(s.stdin, null);
  });
});
