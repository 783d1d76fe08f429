import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * The external-trigger switch of a CSI sensor driver is a kernel module parameter, not a V4L2 control: for the
 * Raspberry Pi Global Shutter camera, `echo 1 > /sys/module/imx296/parameters/trigger_mode` (Raspberry Pi
 * documentation, "External trigger on the GS camera"; 0 is free-running). The driver reads it when streaming starts
 * (drivers/media/i2c/imx296.c imx296_stream_on: current kernels write the trigger register from it at every start,
 * older ones only set it and relied on the sensor's power-off to clear it), and it is one value for every sensor
 * of that driver. So it is set before every rpicam-vid run of a triggered camera and read back (a box without the
 * driver gets a clear error instead of a camera that silently free-runs), and set back to 0 before a free-running
 * camera of that sensor starts and when a triggered camera stops, so neither rigcam nor the next program to use the
 * camera finds it silently waiting for pulses.
 */
export const DEFAULT_TRIGGER_PARAM = '/sys/module/imx296/parameters/trigger_mode';

/** The trigger parameter a sensor's driver would have (`rpicam-hello --list-cameras` names the sensor as its driver does), or null. */
export function sensorTriggerParam(sensor: string): string | null {
  return /^[a-z0-9_]{1,64}$/.test(sensor) ? `/sys/module/${sensor}/parameters/trigger_mode` : null;
}

/** The parameter's value as read (trimmed), or null when it does not exist (no such driver loaded). */
export function readSensorTriggerMode(param: string, sysRoot = '/'): string | null {
  try {
    return readFileSync(path.join(sysRoot, param), 'utf8').trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new Error(`cannot read ${param}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** Sets the parameter (`sysRoot` prefixes it: "/" on a box, a temp dir in tests) and checks the value read back. */
export function setSensorTriggerModeSync(param: string, value: 0 | 1, sysRoot = '/'): void {
  const file = path.join(sysRoot, param);
  const what = value === 1 ? 'set external trigger' : 'set the sensor back to free-running';
  try {
    writeFileSync(file, `${value}\n`, { flag: 'r+' }); // never creates a file: the parameter exists or the driver is not there
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(
      code === 'ENOENT'
        ? `cannot ${what}: ${param} does not exist (is the sensor's driver loaded, the camera connected?)`
        : `cannot ${what}: ${param}: ${code ?? (err as Error).message}${code === 'EACCES' ? ' (writing it needs root)' : ''}`,
    );
  }
  const back = readFileSync(file, 'utf8').trim();
  if (back !== String(value)) throw new Error(`cannot ${what}: ${param} reads ${JSON.stringify(back)} after writing ${value}`);
}

export async function setSensorTriggerMode(param: string, value: 0 | 1, sysRoot = '/'): Promise<void> {
  setSensorTriggerModeSync(param, value, sysRoot);
}
