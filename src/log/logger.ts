import { write, writeSync } from 'node:fs';
import { pino, type Logger } from 'pino';

/**
 * One JSON object per line on stdout: journald keeps it as the MESSAGE and `journalctl -o cat`
 * shows it back verbatim. Level names instead of numbers so a person can grep them.
 */
export type { Logger };

/**
 * Log bytes held while their reader does not read (journald flushing to a slow SD card, or restarted by an
 * upgrade): ~2,500 lines. Past it a line is dropped and counted, never waited for. A synchronous write to a stalled
 * stdout had blocked the event loop, and every camera's pipe with it, for as long as the stall (issue 17).
 */
export const LOG_BUFFER_BYTES = 1 << 20;

/**
 * Lines written to a file descriptor off the event loop (libuv's thread pool), one write in flight at a time, at
 * most `maxBytes` held. A write blocked by a stalled reader holds one of the pool's four threads: the fsyncs of a
 * start or stop have the other three. When a write completes after lines were dropped, `onDropped` is told how
 * many (the logger says so in a warning). `idle()` resolves once everything held is written: an orderly exit
 * awaits it; at process exit what is still queued is written synchronously (flushSync).
 */
export class BoundedFdWriter {
  private queue: string[] = [];
  private held = 0;
  private inFlight = false;
  /** What is left of the write in flight while it waits for a retry after EAGAIN (on the event loop, not the pool). */
  private retry: Buffer | null = null;
  private dropped = 0;
  private closed = false;
  /** Set at process exit: from then on lines are only queued, for flushSync. */
  private exiting = false;
  private idleWaiters: Array<() => void> = [];
  onDropped: (lines: number) => void = () => undefined;

  constructor(
    readonly fd: number,
    readonly maxBytes = LOG_BUFFER_BYTES,
  ) {
    live.add(this);
  }

  /** pino's destination interface: one line per call. */
  write(line: string): boolean {
    if (this.closed) return true;
    const len = Buffer.byteLength(line);
    if (this.held + len > this.maxBytes && !this.exiting) {
      this.dropped++;
      return true;
    }
    this.queue.push(line);
    this.held += len;
    if (!this.inFlight && !this.exiting) this.next();
    return true;
  }

  /** Resolves when nothing is held (or after `timeoutMs`: a reader that never reads must not hold up an exit). */
  idle(timeoutMs = 2000): Promise<void> {
    if (!this.held || this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(resolve, timeoutMs);
      this.idleWaiters.push(() => (clearTimeout(t), resolve()));
    });
  }

  /**
   * What is queued, written synchronously (process exit), after the warning for lines dropped since the last write.
   * A write waiting for its EAGAIN retry goes first (its timer will not fire any more). A write still in the thread
   * pool is the pool's: with a reader that reads it ends within µs, so it gets 50 ms first (writing beside it would
   * interleave the two, which a reader stalled at exit can still see; it also holds the exit until it reads, or
   * systemd's stop timeout ends the process: the recordings are final by then).
   */
  flushSync(): void {
    if (this.closed) return;
    this.exiting = true;
    if (this.dropped) {
      const lines = this.dropped;
      this.dropped = 0;
      this.onDropped(lines);
    }
    const rest = this.retry;
    if (!rest && !this.queue.length) return;
    if (this.inFlight && !rest) Atomics.wait(exitNap, 0, 0, 50);
    const buf = Buffer.concat([...(rest ? [rest] : []), Buffer.from(this.queue.join(''))]);
    this.retry = null;
    this.queue = [];
    for (let off = 0, eagain = 0; off < buf.length; ) {
      try {
        off += writeSync(this.fd, buf, off);
      } catch (err) {
        // A non-blocking reader that stays full gets ~2 s; anything else ends the flush.
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN' || ++eagain > 200) return;
        Atomics.wait(exitNap, 0, 0, 10);
      }
    }
  }

  private next(): void {
    const buf = Buffer.from(this.queue.join(''));
    this.queue = [];
    this.inFlight = true;
    this.send(buf, 0);
  }

  private send(buf: Buffer, off: number): void {
    write(this.fd, buf, off, buf.length - off, null, (err, n) => {
      if (err) {
        // A non-blocking descriptor that is full: try again shortly (the lines stay held, and counted in the bound).
        if (err.code === 'EAGAIN') {
          this.retry = buf.subarray(off);
          return void setTimeout(() => {
            this.retry = null;
            this.send(buf, off);
          }, 10);
        }
        // No reader any more (EPIPE) or a broken descriptor: logging stops here; nothing else depends on it.
        this.closed = true;
        this.queue = [];
        this.held = 0;
        this.inFlight = false;
        for (const w of this.idleWaiters.splice(0)) w();
        return;
      }
      if (off + n < buf.length) return this.send(buf, off + n);
      this.held -= buf.length;
      this.inFlight = false;
      if (this.dropped) {
        const lines = this.dropped;
        this.dropped = 0; // a warning that is itself dropped counts as one more line, said after the next write
        this.onDropped(lines); // its warning may have started the next write
      }
      if (this.inFlight) return;
      if (this.queue.length) this.next();
      else for (const w of this.idleWaiters.splice(0)) w();
    });
  }
}

const live = new Set<BoundedFdWriter>();
const exitNap = new Int32Array(new SharedArrayBuffer(4));
process.once('exit', () => {
  for (const w of live) w.flushSync();
});

export interface LoggerOptions {
  level?: string;
  /** A stream to write to (tests, a log file); without one, `fd` is written through a BoundedFdWriter. */
  destination?: NodeJS.WritableStream;
  /** The file descriptor (default 1, stdout). */
  fd?: number;
}

const writers = new WeakMap<Logger, BoundedFdWriter>();

export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = opts.level ?? process.env.RIGCAM_LOG_LEVEL ?? 'info';
  const writer = opts.destination ? undefined : new BoundedFdWriter(opts.fd ?? 1);
  const logger = pino(
    {
      level,
      base: { svc: 'rigcam' },
      formatters: { level: (label) => ({ level: label }) },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    (opts.destination ?? writer) as pino.DestinationStream,
  );
  if (writer) {
    writer.onDropped = (lines) => logger.warn({ dropped_lines: lines }, 'log lines dropped: their reader was not reading');
    writers.set(logger, writer);
  }
  return logger;
}

/** Resolves once the logger's lines are written (bounded): an orderly exit awaits it before process.exit. */
export function logWritten(log: Logger, timeoutMs = 2000): Promise<void> {
  return writers.get(log)?.idle(timeoutMs) ?? Promise.resolve();
}

/** A logger that drops everything, for library use and tests that do not look at logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
