import { EventEmitter } from 'node:events';
import type { Logger } from '../../log/logger.ts';
import type { BackoffOptions } from '../../supervise/backoff.ts';
import { ChildSupervisor, type ChildExit, type ChildSpec } from '../../supervise/child-supervisor.ts';
import type { GpioBias } from './gpio-config.ts';
import type { EdgeEvent, EdgeSourceEvents, GpioStatus } from './gpio-hardware.ts';
import { buildGpiomonArgs } from './gpiod-args.ts';
import { classifyGpiodError } from './gpiod-errors.ts';
import { describeFailure, type GpiodTools } from './gpiod-tools.ts';
import { parseGpiomonLine } from './gpiomon-output.ts';

export interface GpiomonGroup {
  chip: string;
  lines: readonly number[];
  bias: GpioBias;
}

type GpiomonSpec = ChildSpec & { major: 1 | 2 };

/** gpiomon prints nothing once its lines are requested: call it running when it is still up after this long. */
const RUNNING_AFTER_MS = 300;
const STDERR_LINES_KEPT = 5;

/**
 * One supervised `gpiomon` child: parses its events into edges and reports its state. The child supervisor
 * runs it, logs its stderr and restarts it with back-off; here its failures are named in GPIO terms.
 */
export class GpiomonProcess extends EventEmitter<EdgeSourceEvents> {
  private readonly supervisor: ChildSupervisor<GpiomonSpec>;
  private runningTimer?: NodeJS.Timeout;
  private stopping = true;
  private lastState?: GpioStatus['state'];
  private major: 1 | 2 = 2;
  private partial = '';
  readonly source: string;

  constructor(
    tools: GpiodTools,
    private readonly group: GpiomonGroup,
    private readonly logger: Logger,
    backoff: Partial<BackoffOptions> = {},
  ) {
    super();
    this.source = `gpiomon ${group.chip} ${group.lines.join(',')}`;
    this.supervisor = new ChildSupervisor<GpiomonSpec>({
      what: 'gpiomon',
      logFields: { source: this.source },
      makeSpec: async () => {
        // A retry stays 'restarting' (with its fault) until it runs.
        if (this.lastState !== 'restarting') this.report({ state: 'starting', source: this.source });
        const version = await tools.detectVersion();
        const chip = await tools.resolveChip(group.chip);
        const major = version.major;
        const args = buildGpiomonArgs(version, { ...group, chip, debounceUs: 0 });
        return { command: 'gpiomon', args, env: tools.env, major };
      },
      backoff,
      log: logger,
      tailLines: STDERR_LINES_KEPT,
      // gpiomon is silent until an edge: no stall timer.
      stallMs: null,
    });
    this.supervisor.on('started', ({ spec }) => {
      this.major = spec.major;
      this.partial = '';
      clearTimeout(this.runningTimer);
      this.runningTimer = setTimeout(() => {
        if (this.supervisor.running && !this.stopping) this.report({ state: 'running', source: this.source });
      }, RUNNING_AFTER_MS);
    });
    this.supervisor.on('data', (chunk) => {
      const lines = (this.partial + chunk.toString('utf8')).split('\n');
      this.partial = lines.pop() ?? '';
      for (const line of lines) this.line(line);
    });
    this.supervisor.on('exit', (e) => this.exited(e));
  }

  start(): void {
    if (!this.stopping) return;
    this.stopping = false;
    this.supervisor.start();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.runningTimer);
    await this.supervisor.stop(2000);
    this.report({ state: 'stopped', source: this.source });
  }

  private report(status: GpioStatus): void {
    this.lastState = status.state;
    this.emit('status', status);
  }

  private line(text: string): void {
    const line = text.replace(/\r$/, '');
    if (!line) return;
    const event = parseGpiomonLine(this.major, line);
    if (!event) {
      this.logger.debug({ line }, 'gpiomon output ignored');
      return;
    }
    const edge: EdgeEvent = { line: event.offset, rising: event.rising, monoUs: event.monoUs };
    this.emit('edge', edge);
  }

  private exited(e: ChildExit): void {
    clearTimeout(this.runningTimer);
    if (this.stopping || e.restartInMs === null) return;
    let failure: { fault: GpioStatus['fault']; message: string };
    if (e.problem === 'setup_failed') failure = describeFailure(e.error);
    else if (e.problem === 'missing_command') failure = { fault: 'tool_missing', message: 'gpiomon not found on PATH (install the gpiod package)' };
    else {
      const text = e.stderrTail.join('\n');
      const how = e.signal ? `killed by ${e.signal}` : `exited with status ${e.code}`;
      failure = { fault: text ? classifyGpiodError(text) : 'exited', message: text ? `gpiomon ${how}: ${text}` : `gpiomon ${how}` };
    }
    this.logger.error({ source: this.source, fault: failure.fault, retryInMs: e.restartInMs }, failure.message);
    this.report({ state: 'restarting', source: this.source, fault: failure.fault, message: failure.message, retryInMs: e.restartInMs });
  }
}
