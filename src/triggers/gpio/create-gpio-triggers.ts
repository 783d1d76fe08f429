import type { Logger } from '../../log/logger.ts';
import { silentLogger } from '../../log/logger.ts';
import type { CommandHandler } from '../../runtime/command-types.ts';
import type { BackoffOptions } from '../../supervise/backoff.ts';
import type { GpioConfig } from './gpio-config.ts';
import type { EdgeSource, OutputLine } from './gpio-hardware.ts';
import { GpiodEdgeSource } from './gpiod-edge-source.ts';
import { GpiodTools } from './gpiod-tools.ts';
import { GpiosetOutputLine } from './gpioset-output-line.ts';
import { GpioTriggerController } from './gpio-trigger-controller.ts';
import { SysfsEdgeSource, SysfsOutputLine, type OnoffModule } from './sysfs-adapter.ts';

export interface GpioTriggerDeps {
  handler: CommandHandler;
  logger?: Logger;
  /** Environment of the libgpiod tools (PATH decides which gpiomon/gpioset run). */
  env?: NodeJS.ProcessEnv;
  /** Root of the sysfs GPIO class for the sysfs backend (default /sys/class/gpio). */
  sysfsRoot?: string;
  loadOnoff?: () => Promise<OnoffModule>;
  backoff?: Partial<BackoffOptions>;
  /** See EdgeFilterOptions.settleMs. */
  settleMs?: number;
  /** See GpiosetLineOptions.settleMs. */
  outputSettleMs?: number;
}

/** Builds the controller with the backend the config asks for. Call start() on the result. */
export function createGpioTriggers(config: GpioConfig, deps: GpioTriggerDeps): GpioTriggerController {
  const logger = (deps.logger ?? silentLogger()).child({ component: 'gpio' });
  const lines = config.inputs.flatMap((input) => {
    // Debounce is rigcam's (EdgeFilter), on raw edges: see GpiodEdgeSource for why never the kernel's.
    const spec = { bias: input.bias };
    const main = { line: input.line, ...spec };
    return input.stop_line === undefined ? [main] : [main, { line: input.stop_line, ...spec }];
  });
  let edgeSource: EdgeSource;
  let output: (o: { line: number; active_low: boolean }) => OutputLine;
  if (config.backend === 'sysfs') {
    const opts = { root: deps.sysfsRoot, chip: config.chip, backoff: deps.backoff, load: deps.loadOnoff };
    edgeSource = new SysfsEdgeSource(lines, logger, opts);
    output = (o) => new SysfsOutputLine(o.line, o.active_low, logger, opts);
  } else {
    const tools = new GpiodTools(deps.env);
    edgeSource = new GpiodEdgeSource(tools, config.chip, lines, logger, deps.backoff);
    output = (o) =>
      new GpiosetOutputLine(
        tools,
        { chip: config.chip, line: o.line, activeLow: o.active_low, backoff: deps.backoff, settleMs: deps.outputSettleMs },
        logger,
      );
  }
  return new GpioTriggerController({
    config,
    handler: deps.handler,
    edgeSource,
    recordingLine: config.outputs.recording ? output(config.outputs.recording) : undefined,
    statusLedLine: config.outputs.status_led ? output(config.outputs.status_led) : undefined,
    syncOutLine: config.outputs.sync_out ? output(config.outputs.sync_out) : undefined,
    inputClock: config.backend === 'sysfs' ? 'gpio-sysfs-userspace' : 'gpio-kernel',
    logger: deps.logger,
    settleMs: deps.settleMs,
  });
}
