import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SdNotifier, startWatchdogPings, watchdogIntervalFromEnv } from '../../src/service/sd-notify.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { skipUnlessCi } from '../helpers/requires.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const hasPython = spawnSync('python3', ['-c', 'pass']).status === 0;
const hasSystemdNotify = spawnSync('systemd-notify', ['--help'], { stdio: 'ignore' }).status === 0;

/** A unix datagram socket bound by python3, printing each datagram it receives as a JSON line: PID 1's side. */
class DatagramListener {
  readonly messages: string[] = [];
  private waiters: Array<() => void> = [];
  private constructor(private readonly child: ChildProcessWithoutNullStreams) {
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (line === 'listening') return;
      this.messages.push(JSON.parse(line) as string);
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static async start(address: string): Promise<DatagramListener> {
    const src = [
      'import json, socket, sys',
      'a = sys.argv[1]',
      "a = '\\0' + a[1:] if a.startswith('@') else a",
      's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
      's.bind(a)',
      "print('listening', flush=True)",
      'while True:',
      '    print(json.dumps(s.recv(65536).decode()), flush=True)',
    ].join('\n');
    const child = spawn('python3', ['-c', src, address]);
    const listener = new DatagramListener(child);
    await new Promise<void>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`listener exited ${code}`)));
      createInterface({ input: child.stdout }).once('line', () => resolve());
    });
    after(() => listener.stop());
    return listener;
  }

  async waitFor(count: number, timeoutMs = 3000): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.messages.length < count) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`expected ${count} datagrams, got ${JSON.stringify(this.messages)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.messages;
  }

  stop(): void {
    this.child.kill();
  }
}

describe('watchdogIntervalFromEnv', () => {
  it('is half of WATCHDOG_USEC, for this PID only', () => {
    assert.equal(watchdogIntervalFromEnv({ WATCHDOG_USEC: '30000000' }, 42), 15000);
    assert.equal(watchdogIntervalFromEnv({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '42' }, 42), 15000);
    assert.equal(watchdogIntervalFromEnv({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '43' }, 42), null);
    assert.equal(watchdogIntervalFromEnv({}, 42), null);
    assert.equal(watchdogIntervalFromEnv({ WATCHDOG_USEC: 'soon' }, 42), null);
    assert.equal(watchdogIntervalFromEnv({ WATCHDOG_USEC: '0' }, 42), null);
  });
});

describe('SdNotifier without NOTIFY_SOCKET', () => {
  it('does nothing and says so', async () => {
    const n = new SdNotifier({ env: { WATCHDOG_USEC: '1000000' } });
    assert.equal(n.enabled, false);
    assert.equal(await n.ready(), false);
    assert.equal(await n.watchdog(), false);
    assert.equal(n.watchdogIntervalMs(), null);
    const stop = startWatchdogPings(() => true, n);
    stop();
  });
});

describe('SdNotifier over a real unix datagram socket', { skip: skipUnlessCi(!hasPython && 'python3 is not installed') }, () => {
  it('sends READY, STATUS, WATCHDOG and STOPPING in order through the helper', async () => {
    const sock = path.join(tmpDir('rigcam-notify-'), 'notify.sock');
    const listener = await DatagramListener.start(sock);
    const n = new SdNotifier({ env: { NOTIFY_SOCKET: sock, WATCHDOG_USEC: '20000000', WATCHDOG_PID: '7' }, pid: 7 });
    after(() => n.close());
    assert.equal(n.watchdogIntervalMs(), 10000);
    assert.equal(await n.ready('2 cameras'), true);
    assert.equal(await n.status('recording\ntrial 3'), true);
    assert.equal(await n.watchdog(), true);
    assert.equal(await n.stopping(), true);
    assert.deepEqual(await listener.waitFor(4), ['READY=1\nSTATUS=2 cameras', 'STATUS=recording trial 3', 'WATCHDOG=1', 'STOPPING=1']);
  });

  it('reaches an abstract socket (@name)', async () => {
    const name = `@rigcam-test-${process.pid}-${Date.now()}`;
    const listener = await DatagramListener.start(name);
    const n = new SdNotifier({ env: { NOTIFY_SOCKET: name } });
    after(() => n.close());
    assert.equal(await n.ready(), true);
    assert.deepEqual(await listener.waitFor(1), ['READY=1']);
  });

  it('reports a missing socket as not sent, and recovers when it appears', async () => {
    const sock = path.join(tmpDir('rigcam-notify-'), 'late.sock');
    const n = new SdNotifier({ env: { NOTIFY_SOCKET: sock } });
    after(() => n.close());
    assert.equal(await n.watchdog(), false);
    const listener = await DatagramListener.start(sock);
    assert.equal(await n.watchdog(), true);
    assert.deepEqual(await listener.waitFor(1), ['WATCHDOG=1']);
  });

  it('falls back to systemd-notify when python3 cannot be started', { skip: skipUnlessCi(!hasSystemdNotify && 'systemd-notify is not installed') }, async () => {
    const sock = path.join(tmpDir('rigcam-notify-'), 'fallback.sock');
    const listener = await DatagramListener.start(sock);
    const n = new SdNotifier({ env: { ...process.env, NOTIFY_SOCKET: sock }, python: '/nonexistent/python3' });
    after(() => n.close());
    assert.equal(await n.status('fallback works'), true);
    assert.equal(await n.ready(), true);
    // systemd-notify follows each message with a BARRIER=1 datagram (it waits for PID 1 to read it).
    const got = (await listener.waitFor(4)).filter((m) => m !== 'BARRIER=1');
    assert.match(got[0], /^STATUS=fallback works$/m);
    assert.match(got[1], /^READY=1$/m);
  });

  it('pings the watchdog only while healthy', async () => {
    const sock = path.join(tmpDir('rigcam-notify-'), 'wd.sock');
    const listener = await DatagramListener.start(sock);
    const n = new SdNotifier({ env: { NOTIFY_SOCKET: sock, WATCHDOG_USEC: '100000' } });
    after(() => n.close());
    assert.equal(n.watchdogIntervalMs(), 50);
    let healthy = false;
    const stop = startWatchdogPings(() => healthy, n);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(listener.messages.length, 0, 'no ping while unhealthy');
    healthy = true;
    await listener.waitFor(3);
    stop();
    assert.ok(listener.messages.every((m) => m === 'WATCHDOG=1'));
  });

  it('module functions use process.env, and an idle notifier does not keep the process alive', async () => {
    const sock = path.join(tmpDir('rigcam-notify-'), 'proc.sock');
    const listener = await DatagramListener.start(sock);
    const script = [
      "import { notifyReady, notifyStatus, notifyStopping, notifyWatchdog, watchdogIntervalMs } from './src/service/sd-notify.ts';",
      'const sent = [await notifyReady(), await notifyStatus(String(watchdogIntervalMs())), await notifyWatchdog(), await notifyStopping()];',
      'if (!sent.every(Boolean)) process.exitCode = 3;',
    ].join('\n');
    const started = Date.now();
    const res = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: repo,
      env: { ...process.env, NOTIFY_SOCKET: sock, WATCHDOG_USEC: '8000000', WATCHDOG_PID: '' },
      encoding: 'utf8',
      timeout: 20_000,
    });
    assert.equal(res.status, 0, res.stderr);
    assert.ok(Date.now() - started < 15_000);
    assert.deepEqual(await listener.waitFor(4), ['READY=1', 'STATUS=4000', 'WATCHDOG=1', 'STOPPING=1']);
  });
});
