import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, constants, openSync, readSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { LOG_BUFFER_BYTES } from '../../src/log/logger.ts';
import { repoRoot, rigcamBin } from '../helpers/cli.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { sleep } from '../helpers/wait-status.ts';

/**
 * A FIFO whose reader the test controls: opened for reading without blocking, and a blocking write end handed to
 * the process under test as its stdout (as journald's stream is). `capacity` shrinks the pipe (F_SETPIPE_SZ).
 */
function stallablePipe(capacity?: number) {
  const fifo = path.join(tmpDir(), 'stdout.fifo');
  assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
  const readFd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  const writeFd = openSync(fifo, 'w');
  if (capacity) {
    // F_SETPIPE_SZ (1031) on the pipe both ends share; python has fcntl, node has not.
    const r = spawnSync('python3', ['-c', `import fcntl,sys; print(fcntl.fcntl(3, 1031, ${capacity}))`], { stdio: ['ignore', 'pipe', 'pipe', writeFd], encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(Number(r.stdout), capacity);
  }
  const buf = Buffer.alloc(1 << 16);
  /** Everything the pipe holds now. */
  const read = (): string => {
    let out = '';
    for (;;) {
      try {
        const n = readSync(readFd, buf);
        if (n === 0) return out; // every writer closed
        out += buf.toString('utf8', 0, n);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return out;
        throw err;
      }
    }
  };
  return {
    read,
    /** Node with `args`, its stdout this pipe (the test keeps only the reading end). */
    spawn(args: string[], stdio: { stdin?: 'pipe' | 'ignore'; stderr?: 'pipe' | 'inherit' } = {}): ChildProcess {
      const child = spawn(process.execPath, args, { stdio: [stdio.stdin ?? 'ignore', writeFd, stdio.stderr ?? 'inherit'], cwd: repoRoot });
      closeSync(writeFd);
      return child;
    },
    /** Reads until the child has exited, then what is left; closes the reading end. */
    async readToExit(child: ChildProcess): Promise<{ code: number | null; out: string }> {
      const done = new Promise<number | null>((r) => (child.exitCode !== null ? r(child.exitCode) : child.on('close', (code) => r(code))));
      let out = '';
      while (child.exitCode === null) {
        out += read();
        await sleep(10);
      }
      const code = await done;
      out += read();
      closeSync(readFd);
      return { code, out };
    },
  };
}

/** Node arguments that run `body` as an ES module under tsx, from the repository. */
const moduleScript = (body: string): string[] => ['--import', 'tsx', '--input-type=module', '-e', body];

interface Line {
  level: string;
  msg: string;
  i?: number;
  dropped_lines?: number;
}

describe('logging while stdout is not read', () => {
  it('a log call never waits for the reader: lines past the bound are dropped, counted and said; none lost silently', async (t) => {
    const pipe = stallablePipe();
    const script = `import { createLogger, logWritten } from ${JSON.stringify(path.join(repoRoot, 'src/log/logger.ts'))};
const log = createLogger({ level: 'info' });
const pad = 'x'.repeat(400);
let worst = 0;
for (let i = 0; i < 4000; i++) {
  const t0 = performance.now();
  log.info({ i, pad }, 'line');
  worst = Math.max(worst, performance.now() - t0);
}
process.stderr.write(JSON.stringify({ worst }) + '\\n');
process.stdin.once('data', async () => {
  await logWritten(log, 10_000);
  log.info('last');
  await logWritten(log, 10_000);
  process.exit(0);
});
`;
    const child = pipe.spawn(moduleScript(script), { stdin: 'pipe', stderr: 'pipe' });
    t.after(() => void child.kill('SIGKILL'));
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    // Nobody reads yet: 4,000 lines of ~470 bytes are ~1.9 MB, against a 64 KiB pipe and the 1 MiB bound.
    const t0 = Date.now();
    while (!err.includes('worst')) {
      if (Date.now() - t0 > 20_000 || child.exitCode !== null) assert.fail(`the logging loop did not finish with stdout unread (a log call blocked): ${err}`);
      await sleep(50);
    }
    const { worst } = JSON.parse(err.trim().split('\n').pop()!) as { worst: number };
    // A blocking write never returns here; a call preempted on a loaded machine can take a scheduler slice or two.
    assert.ok(worst < 250, `slowest log call ${worst.toFixed(1)} ms`);
    // Now read it all.
    child.stdin!.write('go\n');
    const { code, out } = await pipe.readToExit(child);
    assert.equal(code, 0, err);

    const lines = out.trim().split('\n').map((l) => JSON.parse(l) as Line); // every line whole: none interleaved
    const got = lines.filter((l) => l.msg === 'line').map((l) => l.i!);
    const warnings = lines.filter((l) => l.msg.startsWith('log lines dropped'));
    const dropped = warnings.reduce((n, w) => n + w.dropped_lines!, 0);
    assert.ok(warnings.length >= 1 && warnings.every((w) => w.level === 'warn'), 'the drop is said');
    assert.equal(got.length + dropped, 4000, `${got.length} written + ${dropped} said dropped`);
    assert.deepEqual(got, Array.from({ length: got.length }, (_, i) => i), 'what was written is what came first, in order');
    const heldBytes = out.split('\n').filter((l) => l.includes('"msg":"line"')).reduce((n, l) => n + l.length + 1, 0);
    assert.ok(heldBytes > 0.9 * LOG_BUFFER_BYTES && heldBytes <= LOG_BUFFER_BYTES, `held while unread: ${heldBytes} bytes (${got.length} lines)`);
    assert.equal(lines.at(-1)!.msg, 'last');
  });

  it('what is still queued at process.exit is written', async () => {
    const pipe = stallablePipe();
    const script = `import { createLogger } from ${JSON.stringify(path.join(repoRoot, 'src/log/logger.ts'))};
const log = createLogger({ level: 'info' });
for (let i = 0; i < 200; i++) log.error({ i }, 'fatal detail');
process.exit(3);
`;
    const { code, out } = await pipe.readToExit(pipe.spawn(moduleScript(script)));
    assert.equal(code, 3);
    const got = out.trim().split('\n').map((l) => (JSON.parse(l) as Line).i);
    assert.deepEqual([...got].sort((a, b) => a! - b!), Array.from({ length: 200 }, (_, i) => i));
  });

  it('lines dropped just before the exit are said at the exit', async () => {
    const pipe = stallablePipe();
    // A writer holding 2,000 bytes: of 50 lines of ~100 at once, one goes out, ~20 are queued and the rest dropped.
    const script = `import { BoundedFdWriter } from ${JSON.stringify(path.join(repoRoot, 'src/log/logger.ts'))};
const w = new BoundedFdWriter(1, 2000);
w.onDropped = (n) => w.write(JSON.stringify({ msg: 'dropped', dropped_lines: n }) + '\\n');
for (let i = 0; i < 50; i++) w.write(JSON.stringify({ msg: 'line', i, pad: 'x'.repeat(80) }) + '\\n');
process.exit(0);
`;
    const { code, out } = await pipe.readToExit(pipe.spawn(moduleScript(script)));
    assert.equal(code, 0);
    const lines = out.trim().split('\n').map((l) => JSON.parse(l) as Line);
    const got = lines.filter((l) => l.msg === 'line').map((l) => l.i!);
    const said = lines.filter((l) => l.msg === 'dropped');
    assert.equal(said.length, 1, out);
    assert.ok(got.length >= 15 && got.length <= 21, `${got.length} lines held`);
    assert.deepEqual([...got].sort((a, b) => a - b), Array.from({ length: got.length }, (_, i) => i));
    assert.equal(got.length + said[0]!.dropped_lines!, 50);
  });

  it('a non-blocking stdout that is full at the exit: what waited for a retry is written too, in order', async (t) => {
    const pipe = stallablePipe();
    // process.stdout made non-blocking (as in rigcam serve): a write into the full pipe answers EAGAIN and the rest
    // of its buffer waits for a retry on a timer, which never fires once the process is exiting.
    const script = `import { BoundedFdWriter } from ${JSON.stringify(path.join(repoRoot, 'src/log/logger.ts'))};
void process.stdout;
const w = new BoundedFdWriter(1);
for (let i = 0; i < 400; i++) w.write(JSON.stringify({ msg: 'line', i, pad: 'x'.repeat(400) }) + '\\n');
setTimeout(() => { process.stderr.write('exiting\\n'); process.exit(0); }, 300);
`;
    const child = pipe.spawn(moduleScript(script), { stderr: 'pipe' });
    t.after(() => void child.kill('SIGKILL'));
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    // ~170 KB against a 64 KiB pipe nobody reads until the child is in its exit.
    while (!err.includes('exiting')) {
      if (child.exitCode !== null) break;
      await sleep(10);
    }
    const { code, out } = await pipe.readToExit(child);
    assert.equal(code, 0, err);
    const got = out.trim().split('\n').map((l) => (JSON.parse(l) as Line).i);
    assert.deepEqual(got, Array.from({ length: 400 }, (_, i) => i));
  });

  it('rigcam serve with its stdout unread: trials start and stop at once and record every frame; the lines come later', async (t) => {
    const dir = tmpDir();
    const cfg = path.join(dir, 'rigcam.yaml');
    writeFileSync(cfg, `data_dir: ${dir}\nhttp:\n  port: 0\ncameras:\n  - { id: cam0, width: 320, height: 240, fps: 30 }\n`);
    const pipe = stallablePipe(4096); // one page: a few trials' lines fill it
    const child = pipe.spawn([rigcamBin, 'serve', '--config', cfg]);
    t.after(() => void child.kill('SIGKILL')); // a failed assertion must not leave it running
    let out = '';
    const t0 = Date.now();
    while (!out.includes('rigcam serving')) {
      if (Date.now() - t0 > 30_000 || child.exitCode !== null) assert.fail(`serve did not start: ${out}`);
      out += pipe.read();
      await sleep(50);
    }
    const url = (JSON.parse(out.split('\n').find((l) => l.includes('rigcam serving'))!) as { url: string }).url;
    // The API serves before the camera is ready (READY waits for both).
    for (;;) {
      const st = (await (await fetch(new URL('/api/status', url))).json()) as { cameras?: Array<{ state?: string }> };
      if (st.cameras?.length && st.cameras.every((c) => c.state === 'ready')) break;
      if (Date.now() - t0 > 30_000) assert.fail(`camera not ready: ${JSON.stringify(st)}`);
      out += pipe.read();
      await sleep(50);
    }
    out += pipe.read();
    // The reader stops here.
    const post = async (p: string, body: unknown): Promise<{ ms: number; json: Record<string, unknown> }> => {
      const s = performance.now();
      const r = await fetch(new URL(p, url), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
      const json = (await r.json()) as Record<string, unknown>;
      assert.equal(r.status, 200, JSON.stringify(json));
      return { ms: performance.now() - s, json };
    };
    const trial = async (t: number): Promise<void> => {
      const start = await post('/api/trials/start', { session: 'stall', label: `t${t}` });
      await sleep(1000);
      const stop = await post('/api/trials/stop', {});
      assert.ok(start.ms < 2000 && stop.ms < 5000, `trial ${t}: start ${start.ms.toFixed(0)} ms, stop ${stop.ms.toFixed(0)} ms`);
    };
    // Eight trials log ~12 KB (each ~1.5 KB) into a pipe that holds 4 KiB: most of it has to wait in the service,
    // whose stdout is non-blocking there (a write into the full pipe answers EAGAIN at once, as under systemd).
    const trials = 8;
    for (let i = 0; i < trials; i++) await trial(i);
    const unread = out.length;
    child.kill('SIGTERM'); // reading resumes
    const rest = await pipe.readToExit(child);
    assert.equal(rest.code, 0);
    out += rest.out;

    const db = new Database(path.join(dir, 'rigcam.db'), { readonly: true });
    const recs = db.prepare("SELECT r.frame_count, r.dropped, t.state FROM recordings r JOIN trials t ON t.id = r.trial_id ORDER BY r.id").all() as Array<{ frame_count: number; dropped: number; state: string }>;
    db.close();
    assert.equal(recs.length, trials);
    for (const r of recs) {
      assert.equal(r.state, 'complete');
      assert.ok(r.frame_count >= 30, `${r.frame_count} frames in 1 s at 30 fps`);
      assert.equal(r.dropped, 0);
    }
    // Every line arrived whole, none dropped (KBs against the 1 MiB bound), every trial's, the exit's last.
    const lines = out.trim().split('\n').map((l) => JSON.parse(l) as Line);
    assert.equal(lines.filter((l) => l.msg.startsWith('log lines dropped')).length, 0);
    assert.equal(lines.filter((l) => l.msg === 'recording_stopped').length, trials);
    const trialBytes = out.slice(unread, out.indexOf('"msg":"stopping: finalising recordings"')).length;
    assert.ok(trialBytes > 2 * 4096, `the trials logged ${trialBytes} bytes while the pipe was not read`);
    assert.equal(lines.at(-1)!.msg, 'stopped');
  });
});
