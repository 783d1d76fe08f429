import { EventEmitter } from 'node:events';
import type { Logger } from '../../log/logger.ts';
import type { BackoffOptions } from '../../supervise/backoff.ts';
import type { GpioBias } from './gpio-config.ts';
import type { EdgeSource, EdgeSourceEvents } from './gpio-hardware.ts';
import type { GpiodTools } from './gpiod-tools.ts';
import { GpiomonProcess } from './gpiomon-process.ts';

export interface GpiodInputLine {
  line: number;
  bias: GpioBias;
}

/**
 * Edge source on the GPIO character device through `gpiomon`. One gpiomon per set of lines
 * that share a bias (the tools apply it to all the lines of one request). The kernel is never asked
 * to debounce (libgpiod 2's --debounce-period): on chips without hardware debounce (every Pi up to
 * the 4, gpio-sim) it debounces in a workqueue and stamps the event when that work runs, a tick or
 * more after the edge (on the virtual rig this put frames after a stop edge into the file). Raw
 * edges keep the time stamped in the edge's interrupt; the EdgeFilter debounces them and keeps the
 * first edge's time.
 */
export class GpiodEdgeSource extends EventEmitter<EdgeSourceEvents> implements EdgeSource {
  private readonly processes: GpiomonProcess[] = [];

  constructor(
    tools: GpiodTools,
    chip: string,
    lines: readonly GpiodInputLine[],
    logger: Logger,
    backoff: Partial<BackoffOptions> = {},
  ) {
    super();
    const groups = new Map<string, GpiodInputLine[]>();
    for (const l of lines) {
      const key = l.bias;
      groups.set(key, [...(groups.get(key) ?? []), l]);
    }
    for (const group of groups.values()) {
      const proc = new GpiomonProcess(
        tools,
        { chip, lines: group.map((l) => l.line), bias: group[0]!.bias },
        logger,
        backoff,
      );
      proc.on('edge', (e) => this.emit('edge', e));
      proc.on('status', (s) => this.emit('status', s));
      this.processes.push(proc);
    }
  }

  start(): void {
    for (const p of this.processes) p.start();
  }

  async stop(): Promise<void> {
    await Promise.all(this.processes.map((p) => p.stop()));
  }
}
