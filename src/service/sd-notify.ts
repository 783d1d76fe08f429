import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Socket } from 'node:net';
import { createInterface } from 'node:readline';

/**
 * systemd's notify protocol (sd_notify(3)) for `Type=notify` and `WatchdogSec=`.
 *
 * Node has no AF_UNIX datagram sockets, so the datagrams are sent by a helper process:
 * - `helper` (default): one long-lived python3 child that reads one JSON string per line on stdin,
 *   sends it to NOTIFY_SOCKET and answers `ok` or `err <reason>`. One process for the service's
 *   life: no fork+exec per watchdog ping, and PID 1 can always map the live sender to the unit's
 *   cgroup (a short-lived sender may be gone before PID 1 looks it up; systemd-notify waits on a
 *   BARRIER=1 round trip to avoid that, which costs a second datagram and a wait per message).
 * - `systemd-notify`: one `systemd-notify VAR=VALUE...` per message; used when python3 is missing.
 * Either way the sender is not the main PID, so the unit needs `NotifyAccess=all`.
 * Without NOTIFY_SOCKET (not started by systemd) every call is a no-op that resolves false.
 */

/** stdin and stdout of a child are sockets (pipes), which can be ref'd and unref'd. */
type Helper = ChildProcessByStdio<Socket, Socket, null>;

export type NotifyTransport = 'helper' | 'systemd-notify';

export interface NotifierOptions {
  /** Where NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID are read. Default: process.env. */
  env?: NodeJS.ProcessEnv;
  /** This process's PID, compared with WATCHDOG_PID. Default: process.pid. */
  pid?: number;
  transport?: NotifyTransport;
  /** The python3 executable for the helper. */
  python?: string;
  /** The systemd-notify executable. */
  systemdNotify?: string;
}

// Reads JSON strings, one per line; "@name" is the abstract socket "\0name".
const HELPER_SOURCE = `
import json, socket, sys
addr = sys.argv[1]
if addr.startswith('@'):
    addr = '\\0' + addr[1:]
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
for line in sys.stdin:
    try:
        sock.sendto(json.loads(line).encode('utf-8'), addr)
        reply = 'ok'
    except Exception as e:
        reply = 'err ' + str(e).replace('\\n', ' ')
    sys.stdout.write(reply + '\\n')
    sys.stdout.flush()
`;

/** `KEY=VALUE` lines; values are single-line by protocol, so newlines become spaces. */
function formatMessage(fields: Record<string, string>): string {
  return Object.entries(fields)
    .map(([k, v]) => `${k}=${v.replace(/[\r\n]+/g, ' ')}`)
    .join('\n');
}

/** Half of WATCHDOG_USEC in ms, or null when systemd runs no watchdog for this process. */
export function watchdogIntervalFromEnv(env: NodeJS.ProcessEnv, pid: number): number | null {
  const usec = env.WATCHDOG_USEC;
  if (!usec || !/^\d+$/.test(usec)) return null;
  if (env.WATCHDOG_PID && env.WATCHDOG_PID !== String(pid)) return null;
  const ms = Number(usec) / 1000 / 2;
  return ms >= 1 ? Math.floor(ms) : null;
}

export class SdNotifier {
  readonly socketPath: string | null;
  private readonly env: NodeJS.ProcessEnv;
  private readonly pid: number;
  private transport: NotifyTransport;
  private readonly python: string;
  private readonly systemdNotify: string;
  private helper: Helper | null = null;
  /** Callers waiting for the helper's answer, oldest first (the helper answers in order). */
  private pending: Array<(sent: boolean) => void> = [];
  /** Resolves once the helper has started (true) or failed to start (false). */
  private helperStarted: Promise<boolean> | null = null;
  private closed = false;

  constructor(opts: NotifierOptions = {}) {
    this.env = opts.env ?? process.env;
    this.pid = opts.pid ?? process.pid;
    this.socketPath = this.env.NOTIFY_SOCKET || null;
    this.transport = opts.transport ?? 'helper';
    this.python = opts.python ?? 'python3';
    this.systemdNotify = opts.systemdNotify ?? 'systemd-notify';
  }

  get enabled(): boolean {
    return this.socketPath !== null && !this.closed;
  }

  watchdogIntervalMs(): number | null {
    return this.socketPath ? watchdogIntervalFromEnv(this.env, this.pid) : null;
  }

  ready(status?: string): Promise<boolean> {
    return this.send(status === undefined ? { READY: '1' } : { READY: '1', STATUS: status });
  }

  watchdog(): Promise<boolean> {
    return this.send({ WATCHDOG: '1' });
  }

  stopping(status?: string): Promise<boolean> {
    return this.send(status === undefined ? { STOPPING: '1' } : { STOPPING: '1', STATUS: status });
  }

  status(text: string): Promise<boolean> {
    return this.send({ STATUS: text });
  }

  /**
   * Start the helper now, when there is a socket to notify, so that python's own start-up (tens of ms on an idle
   * Pi, seconds on a loaded one) runs while the service loads rather than delaying READY=1.
   */
  prepare(): void {
    if (this.enabled && this.transport === 'helper') void this.startHelper();
  }

  /** Sends one notification; true once it was handed to the socket, false when disabled or failed. Never rejects. */
  async send(fields: Record<string, string>): Promise<boolean> {
    if (!this.enabled) return false;
    const message = formatMessage(fields);
    if (this.transport === 'helper') {
      if (await this.startHelper()) return this.sendViaHelper(message);
      this.transport = 'systemd-notify';
    }
    return this.sendViaSystemdNotify(message);
  }

  /** Ends the helper; later calls are no-ops. */
  close(): void {
    this.closed = true;
    this.helper?.stdin.end();
    this.helper = null;
    this.settleAll(false);
  }

  private startHelper(): Promise<boolean> {
    if (this.helperStarted) return this.helperStarted;
    this.helperStarted = new Promise<boolean>((resolve) => {
      const child = spawn(this.python, ['-c', HELPER_SOURCE, this.socketPath as string], {
        stdio: ['pipe', 'pipe', 'ignore'],
        env: { ...this.env, PYTHONDONTWRITEBYTECODE: '1' },
      }) as Helper;
      child.once('spawn', () => {
        this.helper = child;
        resolve(true);
      });
      child.once('error', () => resolve(false));
      child.once('exit', () => {
        // A dead helper: answer whoever waits, and let the next call fall back to systemd-notify.
        if (this.helper === child) {
          this.helper = null;
          this.helperStarted = null;
          this.transport = 'systemd-notify';
        }
        this.settleAll(false);
      });
      child.stdin.on('error', () => {});
      createInterface({ input: child.stdout }).on('line', (line) => this.pending.shift()?.(line === 'ok'));
      this.setRef(child, false);
    });
    return this.helperStarted;
  }

  private sendViaHelper(message: string): Promise<boolean> {
    const child = this.helper;
    if (!child) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      this.pending.push((sent) => {
        if (this.pending.length === 0) this.setRef(child, false);
        resolve(sent);
      });
      // Keep the event loop alive while an answer is due, not while idle (it must not block exit).
      this.setRef(child, true);
      child.stdin.write(JSON.stringify(message) + '\n');
    });
  }

  private sendViaSystemdNotify(message: string): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const child = spawn(this.systemdNotify, message.split('\n'), { stdio: 'ignore', env: this.env });
      child.once('error', () => resolve(false));
      child.once('exit', (code) => resolve(code === 0));
    });
  }

  private settleAll(sent: boolean): void {
    const waiting = this.pending;
    this.pending = [];
    for (const settle of waiting) settle(sent);
  }

  private setRef(child: Helper, ref: boolean): void {
    for (const handle of [child, child.stdin, child.stdout]) {
      if (ref) handle.ref();
      else handle.unref();
    }
  }
}

let defaultNotifier: SdNotifier | null = null;

/** The process-wide notifier, reading process.env on first use. */
export function processNotifier(): SdNotifier {
  defaultNotifier ??= new SdNotifier();
  return defaultNotifier;
}

/** READY=1: start-up finished (systemd then considers the unit started). */
/** Start the notify helper early (see SdNotifier.prepare); a no-op without NOTIFY_SOCKET. */
export function prepareNotify(): void {
  processNotifier().prepare();
}

export function notifyReady(status?: string): Promise<boolean> {
  return processNotifier().ready(status);
}

/** WATCHDOG=1: send only while the service is healthy; see startWatchdogPings. */
export function notifyWatchdog(): Promise<boolean> {
  return processNotifier().watchdog();
}

/** STOPPING=1: shutdown began (finalising recordings). */
export function notifyStopping(status?: string): Promise<boolean> {
  return processNotifier().stopping(status);
}

/** STATUS=...: one line shown by `systemctl status rigcam`. */
export function notifyStatus(text: string): Promise<boolean> {
  return processNotifier().status(text);
}

/** How often to ping the watchdog (half of WATCHDOG_USEC), or null when there is no watchdog. */
export function watchdogIntervalMs(): number | null {
  return processNotifier().watchdogIntervalMs();
}

/**
 * Pings the watchdog every half WATCHDOG_USEC while `isHealthy()` is true, so systemd restarts a
 * service whose pipeline stalled as well as one whose event loop hangs. Returns a stop function
 * (a no-op when there is no watchdog). The timer does not keep the process alive.
 */
export function startWatchdogPings(isHealthy: () => boolean, notifier: SdNotifier = processNotifier()): () => void {
  const interval = notifier.watchdogIntervalMs();
  if (interval === null) return () => {};
  const timer = setInterval(() => {
    if (isHealthy()) void notifier.watchdog();
  }, interval);
  timer.unref();
  return () => clearInterval(timer);
}
