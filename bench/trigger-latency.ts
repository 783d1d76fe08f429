/**
 * Trigger latency: serial `START` (over a socat pty pair, through the real SerialTrigger and serialport binding) and
 * HTTP `POST /api/commands start_recording`, each timed from the moment the client sends to the box's
 * `recording_started` status, with a stop between trials. Serial and HTTP trials alternate so machine noise hits
 * both alike. Baselines: the bare transport in the same process (a line across a second pty pair; a POST to a bare
 * Node server, timed to the end of its body). Two phases: a box in this process (so the start's fsync wait can be
 * read from its trial controller and "the rest" split off), then the release build in its own process, run as the
 * systemd unit runs it, its `recording_started` read from its SSE stream (CLOCK_MONOTONIC is one clock for both
 * processes): the goal rows, with the bare pty line again in the same minutes, the floor of a durable start beside
 * them (a bare process that answers the line after making a trial's files and row durable, drivers/durable-start-
 * floor), each start's time split by the scheduler's accounting of the service's threads, and a paced series (each
 * start after a second or more of capture alone, as a lab paces trials, against the floor paced alike). Run alone:
 * node --import tsx bench/trigger-latency.ts
 */
import type { ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';
import { closeSync, fsyncSync, openSync, unlinkSync, writeSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { SerialPortStream } from '@serialport/stream';
import { monoNowUs } from '../src/clock.ts';
import { silentLogger } from '../src/log/logger.ts';
import { SerialTrigger } from '../src/triggers/serial/serial-trigger.ts';
import { serialBinding } from '../src/triggers/serial/hangup-safe-binding.ts';
import type { TrialController } from '../src/runtime/trial-controller.ts';
import { startSocatPty } from '../test/helpers/socat-pty.ts';
import { threadDelta, threadTimes, type ThreadTimes } from './lib/proc-stat.ts';
import { buildForBench } from './lib/build-dist.ts';
import { camerasReady, loadAvg, releaseFor, serveRelease, spawnAsUnit } from './lib/release-serve.ts';
import { startBenchBox } from './lib/bench-box.ts';
import { runBench, scaled, sleep, type BenchRow } from './lib/harness.ts';
import { fixed, percentile } from './lib/stats.ts';

const NAME = 'Trigger latency';

/** One end of a pty pair as the lab equipment would open it, delivering whole lines. */
class LinePort {
  private buf = '';
  private readonly waiters: Array<(line: string, atUs: number) => void> = [];

  private constructor(readonly port: SerialPortStream) {
    port.on('data', (chunk: Buffer) => {
      const at = monoNowUs();
      this.buf += chunk.toString('utf8');
      let i: number;
      while ((i = this.buf.search(/\r?\n/)) >= 0) {
        const line = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + (this.buf[i] === '\r' ? 2 : 1));
        if (line) this.waiters.shift()?.(line, at);
      }
    });
  }

  static async open(p: string): Promise<LinePort> {
    const port = new SerialPortStream({ binding: serialBinding(), path: p, baudRate: 115200, autoOpen: false });
    port.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
    return new LinePort(port);
  }

  /** The next line and when its last chunk arrived (CLOCK_MONOTONIC µs). */
  nextLine(timeoutMs = 10_000): Promise<{ line: string; atUs: number }> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no line within timeout')), timeoutMs);
      this.waiters.push((line, atUs) => {
        clearTimeout(t);
        resolve({ line, atUs });
      });
    });
  }

  write(s: string): void {
    this.port.write(s);
  }

  close(): Promise<void> {
    return new Promise((r) => (this.port.isOpen ? this.port.close(() => r()) : r()));
  }
}

function post(agent: http.Agent, url: string, body: unknown): { sentUs: number; done: Promise<number> } {
  const data = JSON.stringify(body);
  const req = http.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } });
  const done = new Promise<number>((resolve, reject) => {
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
  });
  const sentUs = monoNowUs();
  req.end(data);
  return { sentUs, done };
}

/** What one durable new file costs on this disk now: create, write 1 KB, fsync it, fsync its directory (µs). */
function bareFsyncUs(dir: string, i: number): number {
  const f = path.join(dir, `bare-${i}.json`);
  const t0 = monoNowUs();
  const fd = openSync(f, 'wx');
  writeSync(fd, Buffer.alloc(1024, 32));
  fsyncSync(fd);
  closeSync(fd);
  const d = openSync(dir, 'r');
  fsyncSync(d);
  closeSync(d);
  const us = monoNowUs() - t0;
  unlinkSync(f);
  return us;
}

/** The statuses of a running service, from its SSE stream: each `recording_started` (mono_us) as it comes. */
class StatusStream {
  private buf = '';
  private waiters: Array<{ status: string; resolve: (m: { mono_us: number; data: Record<string, unknown> }) => void }> = [];
  private constructor(private readonly req: http.ClientRequest) {}

  static open(url: string): Promise<StatusStream> {
    return new Promise((resolve, reject) => {
      const req = http.get(`${url}/api/events`, (res) => {
        if (res.statusCode !== 200) return reject(new Error(`/api/events: ${res.statusCode}`));
        res.setEncoding('utf8');
        res.on('data', (d: string) => s.onData(d));
        resolve(s);
      });
      const s = new StatusStream(req);
      req.on('error', reject);
    });
  }

  private onData(d: string): void {
    this.buf += d;
    let i: number;
    while ((i = this.buf.indexOf('\n\n')) >= 0) {
      const block = this.buf.slice(0, i);
      this.buf = this.buf.slice(i + 2);
      const line = block.split('\n').find((l) => l.startsWith('data: '));
      if (!line) continue;
      const m = JSON.parse(line.slice(6)) as { status?: string; mono_us: number; data: Record<string, unknown> };
      const w = this.waiters.findIndex((x) => x.status === m.status);
      if (w >= 0) this.waiters.splice(w, 1)[0]!.resolve(m);
    }
  }

  next(status: string): Promise<{ mono_us: number; data: Record<string, unknown> }> {
    return new Promise((resolve) => this.waiters.push({ status, resolve }));
  }

  close(): void {
    this.req.destroy();
  }
}

/** The bare serial baseline: a line across a pty pair nobody else uses, timed from the write to its arrival. */
class BarePtyLine {
  private constructor(
    private readonly a: LinePort,
    private readonly b: LinePort,
  ) {}

  static async open(pty: { linkA: string; linkB: string }): Promise<BarePtyLine> {
    return new BarePtyLine(await LinePort.open(pty.linkA), await LinePort.open(pty.linkB));
  }

  async timeUs(): Promise<number> {
    const line = this.b.nextLine();
    const t0 = monoNowUs();
    this.a.write('START\r\n');
    return (await line).atUs - t0;
  }

  async close(): Promise<void> {
    await this.a.close();
    await this.b.close();
  }
}

/**
 * The durable start's floor (drivers/durable-start-floor): a bare Node process, run as the unit runs rigcam, that
 * answers START over its own pty pair after making a trial's files and row durable. Timed from the write to the
 * instant it would announce (its reply carries it), as rigcam's rows are timed to recording_started's stamp.
 */
class DurableStartFloor {
  private constructor(
    private readonly port: LinePort,
    private readonly child: ChildProcessByStdio<null, Readable, null>,
  ) {}

  static async open(script: string, pty: { linkA: string; linkB: string }, dir: string): Promise<DurableStartFloor> {
    const child = spawnAsUnit(script, [pty.linkA, dir]);
    // It says "ready" once its port is open: a line sent before would be lost.
    await new Promise<void>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('ready\n')) resolve();
      });
      child.on('exit', (code) => reject(new Error(`the durable start floor exited ${code}`)));
    });
    const floor = new DurableStartFloor(await LinePort.open(pty.linkB), child);
    await floor.timeUs(); // a first start, not counted (its code runs cold)
    return floor;
  }

  private async stop(): Promise<void> {
    const stopped = this.port.nextLine();
    this.port.write('STOP\r\n');
    const { line } = await stopped;
    if (line !== 'OK STOP') throw new Error(`durable start floor: ${line}`);
  }

  async timeUs(): Promise<number> {
    const reply = this.port.nextLine();
    const t0 = monoNowUs();
    this.port.write('START\r\n');
    const { line } = await reply;
    const m = /^OK START (\d+)$/.exec(line);
    if (!m) throw new Error(`durable start floor: ${line}`);
    await this.stop();
    return Number(m[1]) - t0;
  }

  async close(): Promise<void> {
    this.child.kill('SIGTERM');
    await this.port.close();
  }
}

type Started = { mono_us: number; data: Record<string, unknown> };
type WaitStatus = (status: string) => Promise<Started>;
/** Called just before a trial sends its start and just after its recording_started arrives. */
type Marks = { before(): void; after(): void };

/** One serial trial: START, its recording_started and OK reply, then STOP and its reply; the send time and the status. */
async function serialTrial(port: LinePort, wait: WaitStatus, failures: string[], label: string, marks?: Marks): Promise<{ sentUs: number; m: Started }> {
  // Each reply is waited for before its line is sent: over SSE the status can come after the reply, and a line
  // nobody waits for is dropped.
  const started = wait('recording_started');
  const replied = port.nextLine();
  marks?.before();
  const sentUs = monoNowUs();
  port.write('START\r\n');
  const m = await started;
  marks?.after();
  const reply = await replied;
  if (!reply.line.startsWith('OK START')) failures.push(`${label}serial: ${reply.line}`);
  const stopped = wait('recording_stopped');
  const stopReply = port.nextLine();
  port.write('STOP\r\n');
  await stopped;
  await stopReply;
  return { sentUs, m };
}

/** One HTTP trial: start_recording, its recording_started and 200, then stop_recording; the send time and the status. */
async function httpTrial(agent: http.Agent, url: string, wait: WaitStatus, failures: string[], label: string, marks?: Marks): Promise<{ sentUs: number; m: Started }> {
  const started = wait('recording_started');
  marks?.before();
  const r = post(agent, `${url}/api/commands`, { command: 'start_recording' });
  const m = await started;
  marks?.after();
  const code = await r.done;
  if (code !== 200) failures.push(`${label}http start: ${code}`);
  const stop = post(agent, `${url}/api/commands`, { command: 'stop_recording' });
  if ((await stop.done) !== 200) failures.push(`${label}http stop failed`);
  return { sentUs: r.sentUs, m };
}

const GOAL_US = 5000;

/** The five slowest samples with the matching entries of the other series, in ms. */
const slowest = (lat: number[], with_: number[][]): string =>
  lat
    .map((us, i) => ({ us, i }))
    .sort((a, b) => b.us - a.us)
    .slice(0, 5)
    .map(({ us, i }) => [us, ...with_.map((s) => s[i]!)].map((v) => fixed(v / 1000, 1)).join(' / '))
    .join('; ');

/** p50 / p99 (or p50 / max, top = 100) in ms. */
const pcts = (us: number[], top = 99): string => `${fixed(percentile(us, 50) / 1000, 2)} / ${fixed(percentile(us, top) / 1000, 2)} ms`;

await runBench('trigger-latency', async (ctx) => {
  const trials = scaled(200, ctx.scale, 20);
  const dir = ctx.tmpDir('trigger');
  const pty = await startSocatPty(path.join(dir, 'a'), path.join(dir, 'b'));
  const floorPty = await startSocatPty(path.join(dir, 'c'), path.join(dir, 'd'));
  const b = await startBenchBox({ dir, cameras: [{ id: 'cam0', width: 320, height: 240, fps: 30 }], http: true });
  // 2 lines per trial: well under this, so the flood limiter never refuses a line and skews the timing.
  const serial = new SerialTrigger({ config: { enabled: true, path: pty.linkA, max_lines_per_second: 100 }, handler: b.box, logger: silentLogger() });
  const connected = new Promise<void>((r) => serial.once('serial_connected', () => r()));
  serial.start();
  await connected;
  const client = await LinePort.open(pty.linkB);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const boxUrl = b.url;
  if (!boxUrl) throw new Error('the bench box serves no HTTP');

  // Baseline transports.
  const floorLine = await BarePtyLine.open(floorPty);
  let bareEndUs = 0;
  const bare = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      bareEndUs = monoNowUs();
      JSON.parse(body);
      res.end('{"ok":true}');
    });
  });
  await new Promise<void>((r) => bare.listen(0, '127.0.0.1', () => r()));
  const bareUrl = `http://127.0.0.1:${(bare.address() as AddressInfo).port}/api/commands`;
  const bareAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });

  const serialLat: number[] = [];
  const serialStamp: number[] = [];
  const httpLat: number[] = [];
  const httpStamp: number[] = [];
  const serialFloor: number[] = [];
  const startSync: number[] = [];
  const restLat: number[] = [];
  const bareSync: number[] = [];
  const trials_ = (b.box as unknown as { trials: TrialController }).trials;
  const loads = [loadAvg()];
  const httpFloor: number[] = [];
  const failures: string[] = [];
  ctx.log(`${trials} serial and ${trials} HTTP trials, alternating`);
  for (let i = 0; i < trials; i++) {
    // Serial START → recording_started, then STOP.
    {
      const { sentUs: t0, m } = await serialTrial(client, (st) => b.waitStatus(st), failures, '');
      serialLat.push(m.mono_us - t0);
      startSync.push(trials_.lastStartSyncUs ?? Number.NaN);
      restLat.push(m.mono_us - t0 - (trials_.lastStartSyncUs ?? 0));
      serialStamp.push((m.data.trigger_mono_us as number) - t0);
    }
    await sleep(5 + Math.random() * 30);
    // HTTP start_recording → recording_started, then stop.
    {
      const { sentUs, m } = await httpTrial(agent, boxUrl, (st) => b.waitStatus(st), failures, '');
      httpLat.push(m.mono_us - sentUs);
      startSync.push(trials_.lastStartSyncUs ?? Number.NaN);
      restLat.push(m.mono_us - sentUs - (trials_.lastStartSyncUs ?? 0));
      httpStamp.push((m.data.trigger_mono_us as number) - sentUs);
    }
    await sleep(5 + Math.random() * 30);
    // The bare transports, same pacing.
    {
      serialFloor.push(await floorLine.timeUs());
      const r = post(bareAgent, bareUrl, { command: 'start_recording' });
      await r.done;
      httpFloor.push(bareEndUs - r.sentUs);
      bareSync.push(bareFsyncUs(dir, i));
    }
    if ((i + 1) % 50 === 0) {
      loads.push(loadAvg());
      ctx.log(`${i + 1}/${trials} (load ${loads.at(-1)})`);
    }
  }
  await serial.stop();
  await client.close();
  await floorLine.close();
  agent.destroy();
  bareAgent.destroy();
  bare.close();
  await b.close();
  await pty.kill();
  await floorPty.kill();

  // The same two triggers against the release build in its own process, run as the unit runs it: what a box does.
  // The client, its timers and tsx are not in rigcam's event loop here; the split above needs the in-process box.
  const relTrials = scaled(200, ctx.scale, 20);
  const rel = releaseFor(ctx.tmpDir('release'), ctx.log);
  const relDir = ctx.tmpDir('trigger-release');
  const relPty = await startSocatPty(path.join(relDir, 'a'), path.join(relDir, 'b'));
  const svc = serveRelease({
    bin: rel,
    dataDir: relDir,
    cameras: [{ id: 'cam0', width: 320, height: 240, fps: 30 }],
    env: { RIGCAM_CONFIG: '' },
    extraYaml: ['serial:', '  enabled: true', `  path: ${relPty.linkA}`, '  max_lines_per_second: 100'].join('\n'),
  });
  const relFloorPty = await startSocatPty(path.join(relDir, 'c'), path.join(relDir, 'd'));
  const durablePty = await startSocatPty(path.join(relDir, 'e'), path.join(relDir, 'f'));
  const [floorJs] = buildForBench(ctx.tmpDir('floor-dist'), ['bench/drivers/durable-start-floor.ts']);
  const relDurableFloor: number[] = [];
  const pacedTrials = scaled(30, ctx.scale, 5);
  const relPaced: number[] = [];
  const relPacedFloor: number[] = [];
  const relSerial: number[] = [];
  const relHttp: number[] = [];
  const relSerialStamp: number[] = [];
  const relHttpStamp: number[] = [];
  const relSerialFloor: number[] = [];
  const relMainOnCpu: number[] = [];
  const relWaitMain: number[] = [];
  const relWaitAll: number[] = [];
  const relWaitClient: number[] = [];
  let durable: DurableStartFloor | null = null;
  try {
    const url = await svc.url;
    await camerasReady(url, 1);
    const events = await StatusStream.open(url);
    const port = await LinePort.open(relPty.linkB);
    const relAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    ctx.log(`release build: ${relTrials} serial and ${relTrials} HTTP trials`);
    const next: WaitStatus = (st) => events.next(st);
    const pid = svc.child.pid!;
    // Where each start's time went, by the scheduler's accounting: the service's main thread on a CPU or waiting
    // for one (its other threads: the threadpool's fsyncs, V8's helpers), and this client's threads waiting.
    let at: { svc: ThreadTimes; self: ThreadTimes } | null = null;
    const marks: Marks = {
      before: () => (at = { svc: threadTimes(pid), self: threadTimes(process.pid) }),
      after: () => {
        const d = threadDelta(at!.svc, threadTimes(pid), pid);
        relMainOnCpu.push(d.mainOnCpu);
        relWaitMain.push(d.mainWaiting);
        relWaitAll.push(d.allWaiting);
        relWaitClient.push(threadDelta(at!.self, threadTimes(process.pid), process.pid).allWaiting);
      },
    };
    const floorLine = await BarePtyLine.open(relFloorPty);
    durable = await DurableStartFloor.open(floorJs!, durablePty, ctx.tmpDir('durable-floor'));
    for (let i = 0; i < relTrials; i++) {
      const serial = await serialTrial(port, next, failures, 'release ', marks);
      relSerial.push(serial.m.mono_us - serial.sentUs);
      relSerialStamp.push((serial.m.data.trigger_mono_us as number) - serial.sentUs);
      await sleep(5 + Math.random() * 30);
      const web = await httpTrial(relAgent, url, next, failures, 'release ', marks);
      relHttp.push(web.m.mono_us - web.sentUs);
      relHttpStamp.push((web.m.data.trigger_mono_us as number) - web.sentUs);
      await sleep(5 + Math.random() * 30);
      // The bare pty line again, in the same minutes as the release's trials.
      relSerialFloor.push(await floorLine.timeUs());
      // And the durable start's floor: the pty line plus the files and row a start must make durable.
      relDurableFloor.push(await durable.timeUs());
    }
    // Paced as a lab paces trials: each start after a second or more of capture alone, so what the back-to-back
    // series above leaves behind (the collector's work for the garbage of a trial every ~50 ms) has settled. The
    // series above is trial churn's worst case; this one is what a start costs when it comes on its own.
    for (let i = 0; i < pacedTrials; i++) {
      await sleep(1000 + Math.random() * 500);
      const serial = await serialTrial(port, next, failures, 'release paced ');
      relPaced.push(serial.m.mono_us - serial.sentUs);
      await sleep(1000 + Math.random() * 500);
      relPacedFloor.push(await durable.timeUs());
    }
    events.close();
    await port.close();
    await floorLine.close();
    relAgent.destroy();
  } finally {
    await durable?.close();
    await svc.stop();
    await relPty.kill();
    await relFloorPty.kill();
    await durablePty.kill();
  }
  loads.push(loadAvg());

  const ratio = (a: number[], base: number[], top = 99): string => `${fixed(percentile(a, 50) / percentile(base, 50), 1)} / ${fixed(percentile(a, top) / percentile(base, top), 1)}`;
  // Both transports in trial order, as the per-start thread times were taken (serial, HTTP, serial, ...).
  const relBoth = relSerial.flatMap((us, i) => [us, relHttp[i]!]);
  const notWaiting = relBoth.map((us, i) => us - relWaitMain[i]!);
  const rows: BenchRow[] = [
    { bench: NAME, figure: `serial START → recording_started, release build, p50 / p99 (${relTrials})`, value: pcts(relSerial), baseline: `${pcts(relDurableFloor)} bare durable start`, ratio: ratio(relSerial, relDurableFloor), goal: 'p99 < 5 ms', ok: !failures.length && percentile(relSerial, 99) < GOAL_US },
    { bench: NAME, figure: '  bare durable start: pty line, 3 files created, 1 WAL row, their fsyncs (floor), p50 / p99', value: pcts(relDurableFloor), baseline: `${pcts(relSerialFloor)} bare pty line`, ratio: ratio(relDurableFloor, relSerialFloor), goal: '—', ok: null },
    { bench: NAME, figure: `  paced, each start after ≥ 1 s of capture alone, p50 / max (${pacedTrials})`, value: pcts(relPaced, 100), baseline: `${pcts(relPacedFloor, 100)} bare durable start`, ratio: ratio(relPaced, relPacedFloor, 100), goal: '—', ok: null },
    { bench: NAME, figure: `HTTP start → recording_started, release build, p50 / p99 (${relTrials})`, value: pcts(relHttp), baseline: `${pcts(httpFloor)} bare node POST`, ratio: ratio(relHttp, httpFloor), goal: 'p99 < 5 ms', ok: !failures.length && percentile(relHttp, 99) < GOAL_US },
    { bench: NAME, figure: "  the service's main thread waiting for a CPU (run queue), both transports, p50 / p99", value: pcts(relWaitMain), baseline: `${pcts(relSerialFloor)} bare pty line`, ratio: ratio(relWaitMain, relSerialFloor), goal: '—', ok: null },
    { bench: NAME, figure: "  the service's main thread on a CPU, both transports, p50 / p99", value: pcts(relMainOnCpu), baseline: `${pcts(relSerialFloor)} bare pty line`, ratio: ratio(relMainOnCpu, relSerialFloor), goal: '—', ok: null },
    { bench: NAME, figure: "  latency minus the main thread's wait for a CPU, both transports, p50 / p99", value: pcts(notWaiting), baseline: `${pcts(relSerialFloor)} bare pty line`, ratio: ratio(notWaiting, relSerialFloor), goal: '—', ok: null },
    { bench: NAME, figure: 'trigger time stamped after the send, release build, serial p50 / p99', value: pcts(relSerialStamp), baseline: `${pcts(relSerialFloor)} bare pty line`, ratio: ratio(relSerialStamp, relSerialFloor), goal: '—', ok: null },
    { bench: NAME, figure: 'trigger time stamped after the send, release build, HTTP p50 / p99', value: pcts(relHttpStamp), baseline: `${pcts(httpFloor)} bare node POST`, ratio: ratio(relHttpStamp, httpFloor), goal: '—', ok: null },
    { bench: NAME, figure: `serial START → recording_started, in this process, p50 / p99 (${trials})`, value: pcts(serialLat), baseline: `${pcts(serialFloor)} bare pty line`, ratio: ratio(serialLat, serialFloor), goal: '—', ok: null },
    { bench: NAME, figure: `HTTP start → recording_started, in this process, p50 / p99 (${trials})`, value: pcts(httpLat), baseline: `${pcts(httpFloor)} bare node POST`, ratio: ratio(httpLat, httpFloor), goal: '—', ok: null },
    { bench: NAME, figure: "  of which: waiting for the start's fsyncs (sidecar, dir, WAL), p50 / p99", value: pcts(startSync), baseline: `${pcts(bareSync)} bare new file + dir fsync`, ratio: ratio(startSync, bareSync), goal: '—', ok: null },
    { bench: NAME, figure: '  the rest (both transports, latency minus those fsyncs), p50 / p99', value: pcts(restLat), baseline: `${pcts(httpFloor)} bare node POST`, ratio: ratio(restLat, httpFloor), goal: 'p99 < 5 ms', ok: percentile(restLat, 99) < GOAL_US },
    { bench: NAME, figure: 'trigger time stamped after the send, in this process, serial p50 / p99', value: pcts(serialStamp), baseline: `${pcts(serialFloor)} bare pty line`, ratio: ratio(serialStamp, serialFloor), goal: '—', ok: null },
    { bench: NAME, figure: 'trigger time stamped after the send, in this process, HTTP p50 / p99', value: pcts(httpStamp), baseline: `${pcts(httpFloor)} bare node POST`, ratio: ratio(httpStamp, httpFloor), goal: '—', ok: null },
  ];
  const notes = [
    `Load average (1/5/15 min) at start and every 50 trials: ${loads.join('; ')}. The fsyncs are the start's durability (the files and rows exist on disk before recording_started says so); their cost is the disk's, shown beside a bare new file's fsync measured in the same run.`,
    `max: serial ${fixed(Math.max(...serialLat) / 1000, 1)} ms, HTTP ${fixed(Math.max(...httpLat) / 1000, 1)} ms. The stamp is the trigger instant rigcam records (first byte of the line; arrival of the request) and places on the frame clock.`,
    `release, per start, from just before the send to the status's arrival here (/proc/<pid>/task/*/schedstat): all the service's threads waiting for a CPU p50 / p99 ${pcts(relWaitAll)}, this client's ${pcts(relWaitClient)}. Slowest starts (latency; the main thread on a CPU, waiting for one; all threads waiting; the client waiting; ms): ${slowest(relBoth, [relMainOnCpu, relWaitMain, relWaitAll, relWaitClient])}.`,
    ...(failures.length ? [`failures: ${failures.slice(0, 5).join('; ')}`] : []),
  ];
  return { rows, notes };
});
