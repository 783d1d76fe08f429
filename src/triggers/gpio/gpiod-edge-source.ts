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
  debounceUs: number;
}

/**
 * Edge source on the GPIO character device through `gpiomon`. One gpiomon per set of lines
 * that share bias and debounce (the tools apply those to all the lines of one request).
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
      const key = `${l.bias}/${l.debounceUs}`;
      groups.set(key, [...(groups.get(key) ?? []), l]);
    }
    for (const group of groups.values()) {
      const proc = new GpiomonProcess(
        tools,
        { chip, lines: group.map((l) => l.line), bias: group[0]!.bias, debounceUs: group[0]!.debounceUs },
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
