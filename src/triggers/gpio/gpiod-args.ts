import type { GpioBias } from './gpio-config.ts';
import type { GpiodVersion } from './gpiod-version.ts';

/**
 * Command lines for the libgpiod tools. Edges are always requested electrically (no
 * --active-low): polarity, and on libgpiod 1 debouncing, are applied by the trigger logic so
 * both generations and sysfs behave the same.
 */

/** Our own gpiomon output format per generation: offset, edge, timestamp. */
export const GPIOMON_FORMAT = { 1: '%o %e %s %n', 2: '%o %e %S' } as const;

export interface GpiomonRequest {
  chip: string;
  lines: readonly number[];
  bias: GpioBias;
  /** Kernel debounce period (libgpiod 2 only). */
  debounceUs: number;
}

export function buildGpiomonArgs(version: GpiodVersion, req: GpiomonRequest): string[] {
  const lines = req.lines.map(String);
  if (version.major === 1) {
    // libgpiod 1 block-buffers stdout on a pipe: without --line-buffered events arrive late.
    const args = ['--line-buffered', `--format=${GPIOMON_FORMAT[1]}`];
    if (req.bias !== 'as-is') args.push(`--bias=${req.bias === 'disabled' ? 'disable' : req.bias}`);
    return [...args, req.chip, ...lines];
  }
  const args = ['--chip', req.chip, '--consumer', 'rigcam', '--edges', 'both', '--event-clock', 'monotonic'];
  args.push('--format', GPIOMON_FORMAT[2]);
  if (req.bias !== 'as-is') args.push('--bias', req.bias);
  if (req.debounceUs > 0) args.push('--debounce-period', `${Math.round(req.debounceUs)}us`);
  return [...args, ...lines];
}

/**
 * gpioset holding one line at `level` (electrical) until it is killed. libgpiod 2 prints a
 * banner once the line is requested (GPIOSET_BANNER); libgpiod 1 prints nothing.
 */
export function buildGpiosetArgs(version: GpiodVersion, chip: string, line: number, level: boolean): string[] {
  const value = `${line}=${level ? 1 : 0}`;
  if (version.major === 1) return ['--mode=signal', chip, value];
  return ['--banner', '--chip', chip, '--consumer', 'rigcam', value];
}

export const GPIOSET_BANNER = /^Setting lines? /;
