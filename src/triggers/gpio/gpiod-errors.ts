import type { GpioFault } from './gpio-hardware.ts';

/**
 * Names the failure in a libgpiod tool's stderr. v1 reports errno of the whole request
 * ("error waiting for events: No such file or directory" for a missing chip); v2 names the
 * problem ("cannot find GPIO chip character device 'gpiochip9'").
 */
export function classifyGpiodError(stderr: string): GpioFault {
  const text = stderr.toLowerCase();
  if (/cannot find gpio chip|no such file or directory|looking up chip/.test(text)) return 'chip_missing';
  if (/out of range|invalid argument|cannot find line|invalid gpio offset/.test(text)) return 'line_invalid';
  if (/device or resource busy/.test(text)) return 'line_busy';
  if (/permission denied|operation not permitted/.test(text)) return 'permission';
  if (/no such device/.test(text)) return 'device_gone';
  if (/unrecognized option|invalid option|requires an argument|try \S+ --help|invalid (bias|edges|period|mode|number)/.test(text)) return 'usage';
  return 'unknown';
}
