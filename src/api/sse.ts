import type { Response } from 'express';
import type { Extension } from '../runtime/extensions/extension.ts';
import type { StatusMessage } from '../runtime/status.ts';

export interface EventStreamLimits {
  /** Keep-alive comment interval (default 15 s). */
  keepAliveMs?: number;
  /** Clients served at once; one more gets 503 (each costs a socket and up to maxBacklogBytes of memory). */
  maxClients?: number;
  /** A client this far behind (bytes queued in Node, beyond what the kernel holds) is dropped, not buffered. */
  maxBacklogBytes?: number;
}

interface StatusSource {
  on(event: 'status', listener: (m: StatusMessage) => void): unknown;
  off(event: 'status', listener: (m: StatusMessage) => void): unknown;
}

/**
 * `GET /api/events` as a box extension: every status to every connected client, as server-sent events. Listens
 * to the box only while a client is connected; stopping (box shutdown, server close) ends every stream, since an
 * event stream never ends by itself.
 */
export class EventStreams implements Extension {
  readonly name = 'sse';
  private readonly clients = new Map<Response, NodeJS.Timeout>();
  /** Clients dropped for not reading (for status and tests). */
  dropped = 0;
  private readonly keepAliveMs: number;
  private readonly maxClients: number;
  private readonly maxBacklogBytes: number;
  private readonly onStatus = (m: StatusMessage): void => {
    // Serialised once, whatever the number of clients.
    const line = `data: ${JSON.stringify(m)}\n\n`;
    for (const res of this.clients.keys()) {
      if (res.writableEnded || res.destroyed) continue; // 'close' removes it shortly
      if (res.writableLength + line.length > this.maxBacklogBytes) {
        this.dropped++;
        res.destroy();
      } else res.write(line);
    }
  };

  constructor(
    private readonly box: StatusSource,
    limits: EventStreamLimits = {},
  ) {
    this.keepAliveMs = limits.keepAliveMs ?? 15_000;
    this.maxClients = limits.maxClients ?? 32;
    this.maxBacklogBytes = limits.maxBacklogBytes ?? 256 * 1024;
  }

  get size(): number {
    return this.clients.size;
  }

  /** No room for another client: the route answers 503. */
  get full(): boolean {
    return this.clients.size >= this.maxClients;
  }

  /** Serve one client: headers, then every status until it goes away. */
  add(res: Response): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write('retry: 3000\n: rigcam events\n\n');
    // Proxies and phones drop silent connections: a comment line now and then keeps it open.
    const keepAlive = setInterval(() => res.writableEnded || res.write(': keep-alive\n\n'), this.keepAliveMs);
    if (this.clients.size === 0) this.box.on('status', this.onStatus);
    this.clients.set(res, keepAlive);
    res.on('close', () => this.remove(res));
  }

  private remove(res: Response): void {
    const keepAlive = this.clients.get(res);
    if (keepAlive === undefined) return;
    clearInterval(keepAlive);
    this.clients.delete(res);
    if (this.clients.size === 0) this.box.off('status', this.onStatus);
  }

  start(): void {
    // Clients subscribe as they connect.
  }

  stop(): void {
    for (const res of [...this.clients.keys()]) {
      res.end();
      this.remove(res);
    }
  }
}
