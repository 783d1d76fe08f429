export { createGpioTriggers, type GpioTriggerDeps } from './create-gpio-triggers.ts';
export {
  GpioTriggerController,
  type GpioCommandRecord,
  type GpioControllerStatus,
  type GpioTriggerControllerOptions,
} from './gpio-trigger-controller.ts';
export {
  gpioConfigSchema,
  gpioInputSchema,
  gpioOutputSchema,
  type GpioConfig,
  type GpioConfigInput,
  type GpioInputConfig,
  type GpioOutputConfig,
} from './gpio-config.ts';
export type { EdgeEvent, EdgeSource, GpioFault, GpioStatus, OutputLine } from './gpio-hardware.ts';
export { GpiodEdgeSource } from './gpiod-edge-source.ts';
export { GpiosetOutputLine } from './gpioset-output-line.ts';
export { GpiodTools } from './gpiod-tools.ts';
export { SysfsEdgeSource, SysfsOutputLine } from './sysfs-adapter.ts';
export { SyncPulser, mulberry32, trainIntervals, type SyncEdge } from './sync-pulser.ts';
export { syncOutSchema, type SyncOutConfig } from './gpio-config.ts';
