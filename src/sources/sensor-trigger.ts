import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * The external-trigger switch of a CSI sensor driver is a kernel module parameter, not a V4L2 control: for the
 * Raspberry Pi Global Shutter camera, `echo 1 > /sys/module/imx296/parameters/trigger_mode` (Raspberry Pi
 * documentation, "External trigger on the GS camera"; 0 is free-running). It is read when streaming starts, so it
 * is set before every rpicam-vid run of a triggered camera and read back; a box without the driver (or another
 * sensor) gets a clear error instead of a camera that silently free-runs.
 */
export const DEFAULT_TRIGGER_PARAM = '/sys/module/imx296/parameters/trigger_mode';

/** Sets the parameter (`sysRoot` prefixes it: "/" on a box, a temp dir in tests) and returns the value read back. */
export async function setSensorTriggerMode(param: string, value: 0 | 1, sysRoot = '/'): Promise<void> {
  const file = path.join(sysRoot, param);
  try {
    await writeFile(file, `${value}\n`, { flag: 'r+' }); // never creates a file: the parameter exists or the driver is not there
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(
      code === 'ENOENT'
        ? `cannot set external trigger: ${param} does not exist (is the sensor's driver loaded, the camera connected?)`
        : `cannot set external trigger: ${param}: ${code ?? (err as Error).message}${code === 'EACCES' ? ' (writing it needs root)' : ''}`,
    );
  }
  const back = (await readFile(file, 'utf8')).trim();
  if (back !== String(value)) throw new Error(`cannot set external trigger: ${param} reads ${JSON.stringify(back)} after writing ${value}`);
}
