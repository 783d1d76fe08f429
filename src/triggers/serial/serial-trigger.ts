import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { SerialPortStream } from '@serialport/stream';
import type { Logger } from '../../log/logger.ts';
import { monoNowUs } from '../../clock.ts';
import type { CommandHandler, CommandResult } from '../../runtime/command-types.ts';
import { Backoff } from '../../supervise/backoff.ts';
import { parseSerialLine, type SerialRequest } from './command-line.ts';
import { FloodLimiter, type Refusal } from './flood-limiter.ts';
import { serialBinding } from './hangup-safe-binding.ts';
import { LineSplitter, type LineEvent } from './line-splitter.ts';
import { errLine, jsonReply, textReply } from './reply-format.ts';
import { serialConfigSchema, type SerialConfig, type SerialConfigInput } from './serial-config.ts';

export interface SerialTriggerEvents {
  serial_connected: [{ path: string }];
  serial_disconnected: [{ path: string; reason: string }];
  serial_error: [{ path: string; error: string }];
}

export interface SerialTriggerOptions {
  config: SerialConfigInput;
  handler: CommandHandler;
  logger: Logger;
}

type CommandRequest = Extract<SerialRequest, { kind: 'command' }>;
type Job = { kind: 'reply'; text: string } | { kind: 'command'; request: CommandRequest; triggerMonoUs: number };

/** Answers not yet taken by the port beyond this are dropped: nobody is reading the other end. */
const MAX_WRITE_BACKLOG_BYTES = 64 * 1024;

/**
 * Trial triggers over a serial port (text or JSON lines, see command-line.ts), executed one at a
 * time in arrival order through the CommandHandler, every line answered with one line.
 * The port is reopened with the one back-off (supervise/backoff: doubling, jittered) whenever it fails to open or disappears (USB adapter
 * unplugged), for as long as the trigger runs.
 */
export class SerialTrigger extends EventEmitter<SerialTriggerEvents> {
  readonly config: SerialConfig;
  private readonly handler: CommandHandler;
  private readonly log: Logger;
  private readonly splitter: LineSplitter;
  private readonly limiter: FloodLimiter;

  private running = false;
  private abort = new AbortController();
  private loop: Promise<void> | null = null;
  private port: SerialPortStream | null = null;
  private isConnected = false;
  private lastError: string | null = null;

  private readonly queue: Job[] = [];
  private draining = false;
  private worker: Promise<void> = Promise.resolve();

  constructor(opts: SerialTriggerOptions) {
    super();
    this.config = serialConfigSchema.parse(opts.config);
    this.handler = opts.handler;
    this.log = opts.logger.child({ component: 'serial', path: this.config.path });
    this.splitter = new LineSplitter(this.config.max_line_bytes);
    this.limiter = new FloodLimiter(this.config.max_lines_per_second);
  }

  get connected(): boolean {
    return this.isConnected;
  }

  /** For the box status: whether the port is open, and the last open/port error while it is not. */
  status(): { enabled: boolean; path: string; connected: boolean; last_error: string | null } {
    return { enabled: this.config.enabled, path: this.config.path, connected: this.isConnected, last_error: this.lastError };
  }

  /** Starts opening the port in the background; a disabled config makes this a no-op. */
  start(): void {
    if (this.running) return;
    if (!this.config.enabled) {
      this.log.info('serial trigger disabled');
      return;
    }
    this.running = true;
    this.abort = new AbortController();
    this.loop = this.connectLoop();
  }

  /** Closes the port, drops waiting commands and waits for the one being executed. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.abort.abort();
    this.queue.length = 0;
    const port = this.port;
    if (port?.isOpen) port.close();
    await this.loop;
    await this.worker;
    this.loop = null;
  }

  private async connectLoop(): Promise<void> {
    // Reset explicitly once a port opens: how long it then stays open does not matter.
    const backoff = new Backoff({ initialMs: this.config.reconnect_min_ms, maxMs: this.config.reconnect_max_ms, healthyAfterMs: Number.POSITIVE_INFINITY });
    while (this.running) {
      let port: SerialPortStream;
      try {
        port = await this.openPort();
      } catch (err) {
        this.reportError(errorMessage(err));
        await this.pause(backoff.next());
        continue;
      }
      if (!this.running) {
        await closePort(port);
        break;
      }
      backoff.reset();
      this.lastError = null;
      this.port = port;
      this.isConnected = true;
      this.log.info('serial port open');
      this.emit('serial_connected', { path: this.config.path });

      const closeErr = await new Promise<Error | null>((resolve) => port.once('close', resolve));
      this.isConnected = false;
      this.port = null;
      this.splitter.reset(); // a half-received line does not continue on the next connection
      await closePort(port);
      const reason = this.running ? (closeErr?.message ?? 'closed') : 'stopped';
      this.log.warn({ reason }, 'serial port closed');
      this.emit('serial_disconnected', { path: this.config.path, reason });
      if (this.running) await this.pause(backoff.next());
    }
  }

  private openPort(): Promise<SerialPortStream> {
    const port = new SerialPortStream({
      binding: serialBinding(),
      path: this.config.path,
      baudRate: this.config.baud,
      autoOpen: false,
    });
    port.on('error', (err: Error) => this.reportError(err.message));
    port.on('data', (chunk: Buffer) => this.onData(chunk, monoNowUs()));
    return new Promise((resolve, reject) => {
      port.open((err) => {
        if (err) {
          port.removeAllListeners();
          reject(err);
        } else {
          resolve(port);
        }
      });
    });
  }

  /** Waits out the back-off; returns early when stopped. */
  private async pause(ms: number): Promise<void> {
    try {
      await sleep(ms, undefined, { signal: this.abort.signal });
    } catch {
      // aborted by stop()
    }
  }

  /** serial_error once per distinct error, so a port that stays absent does not repeat it every retry. */
  private reportError(message: string): void {
    if (message === this.lastError) {
      this.log.debug({ err: message }, 'serial error (repeated)');
      return;
    }
    this.lastError = message;
    this.log.warn({ err: message }, 'serial error');
    this.emit('serial_error', { path: this.config.path, error: message });
  }

  private onData(chunk: Buffer, arrivalMonoUs: number): void {
    if (!this.running) return;
    for (const ev of this.splitter.push(chunk, arrivalMonoUs)) this.admit(ev);
  }

  private admit(ev: LineEvent): void {
    const admission = this.limiter.admit(ev.firstByteMonoUs, this.queue.length < this.config.max_pending);
    if (admission !== 'accept') {
      this.refuse(admission);
      return;
    }
    if (ev.kind === 'error') {
      this.log.debug({ reason: ev.reason }, 'bad serial line');
      this.enqueue({ kind: 'reply', text: errLine(ev.reason) });
      return;
    }
    const request = parseSerialLine(ev.text);
    switch (request.kind) {
      case 'ping':
        this.enqueue({ kind: 'reply', text: 'OK PONG' });
        break;
      case 'invalid':
        this.log.debug({ reason: request.reason }, 'bad serial line');
        this.enqueue({ kind: 'reply', text: errLine(request.reason) });
        break;
      case 'command':
        this.enqueue({ kind: 'command', request, triggerMonoUs: ev.firstByteMonoUs });
        break;
    }
  }

  private refuse(admission: Refusal): void {
    if (admission === 'refuse_with_notice') {
      this.log.warn('serial input refused: over max_lines_per_second or max_pending');
      // The one notice per burst may pass the queue bound: it is bounded by the burst rule.
      this.enqueue({ kind: 'reply', text: errLine('busy') });
    }
  }

  private enqueue(job: Job): void {
    this.queue.push(job);
    if (this.draining) return;
    // Set before drain() runs: a queue of plain replies drains synchronously and clears it again.
    this.draining = true;
    this.worker = this.drain();
  }

  /** The single consumer of the queue: commands run one at a time, answers leave in order. */
  private async drain(): Promise<void> {
    try {
      for (let job = this.queue.shift(); job && this.running; job = this.queue.shift()) {
        if (job.kind === 'reply') this.writeLine(job.text);
        else this.writeLine(await this.execute(job.request, job.triggerMonoUs));
      }
    } finally {
      this.draining = false;
    }
  }

  private async execute(request: CommandRequest, triggerMonoUs: number): Promise<string> {
    const format = (result: CommandResult): string =>
      request.format === 'json' ? jsonReply(result) : textReply(request.verb, result);
    try {
      const result = await this.handler.handleCommand(request.command, request.payload, { source: 'serial', triggerMonoUs });
      this.log.info({ command: request.command, ok: result.ok, triggerMonoUs }, 'serial command');
      return format(result);
    } catch (err) {
      // The handler promises results, not exceptions; answer anyway so the line pairing holds.
      this.log.error({ err, command: request.command }, 'command handler failed');
      return format({ ok: false, command: request.command, error: `internal error: ${errorMessage(err)}` });
    }
  }

  private writeLine(text: string): void {
    const port = this.port;
    if (!port?.isOpen) {
      this.log.debug({ reply: text }, 'reply dropped: port not open');
      return;
    }
    if (port.writableLength > MAX_WRITE_BACKLOG_BYTES) {
      this.log.warn({ reply: text }, 'reply dropped: nobody reads the port');
      return;
    }
    port.write(text + this.config.line_ending, (err) => {
      if (err) this.log.debug({ err: err.message }, 'reply write failed');
    });
  }
}

async function closePort(port: SerialPortStream): Promise<void> {
  if (port.isOpen) {
    await new Promise<void>((resolve) => port.close(() => resolve()));
  }
  port.removeAllListeners();
  port.on('error', () => {}); // late errors of a discarded port are of no interest
  port.destroy();
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
