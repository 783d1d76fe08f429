import type { Response } from 'express';
import type { Extension } from '../runtime/extensions/extension.ts';
import type { StatusMessage } from '../runtime/status.ts';

/** An event-stream client this far behind is dropped rather than buffered without bound. */
const MAX_SSE_BACKLOG = 1024 * 1024;

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
  private readonly onStatus = (m: StatusMessage): void => {
    const line = `data: ${JSON.stringify(m)}\n\n`;
    for (const res of this.clients.keys()) {
      if (res.writableEnded) continue; // ended by a server close; 'close' removes it shortly
      if (res.writableLength > MAX_SSE_BACKLOG) res.destroy();
      else res.write(line);
    }
  };

  constructor(
    private readonly box: StatusSource,
    /** Keep-alive comment interval (default 15 s). */
    private readonly keepAliveMs = 15_000,
  ) {}

  get size(): number {
    return this.clients.size;
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
