import type { Config } from '../config/schema.ts';
import type { Logger } from '../log/logger.ts';
import type { BoxRuntime } from '../runtime/box-runtime.ts';
import type { Store } from '../storage/store.ts';
import type { PreviewHub, PreviewOptions } from '../pipeline/preview.ts';
import type { EventStreams } from './sse.ts';

export interface HttpDeps {
  config: Config;
  box: BoxRuntime;
  store: Store;
  /** Absolute recordings root. */
  root: string;
  log: Logger;
  /** Keep-alive comment interval of the event stream (default 15 s). */
  sseKeepAliveMs?: number;
  preview?: Partial<Omit<PreviewOptions, 'log'>>;
}

/** What the routes share: the dependencies, the preview hub, and the event streams (ended on close). */
export interface ApiContext extends HttpDeps {
  hub: PreviewHub;
  events: EventStreams;
}
