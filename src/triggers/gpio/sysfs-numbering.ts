import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pickHeaderChip } from './gpio-chips.ts';

/**
 * The legacy sysfs interface numbers lines globally: chip base + offset. Current kernels
 * (6.6+) no longer give the Pi's header chip base 0 (e.g. 512 on a Pi 4, 569 on a Pi 5), so
 * the number comes from /sys/class/gpio/gpiochip<base>/{base,label,ngpio}.
 */
export interface SysfsChip {
  /** Directory name, `gpiochip<base>`. */
  dir: string;
  base: number;
  label: string;
  ngpio: number;
}

export const DEFAULT_SYSFS_ROOT = '/sys/class/gpio';

export async function readSysfsChips(root: string = DEFAULT_SYSFS_ROOT): Promise<SysfsChip[]> {
  const entries = (await readdir(root)).filter((e) => /^gpiochip\d+$/.test(e));
  const chips = await Promise.all(
    entries.map(async (dir): Promise<SysfsChip> => {
      const read = async (name: string) => (await readFile(join(root, dir, name), 'utf8')).trim();
      return { dir, base: Number(await read('base')), label: await read('label'), ngpio: Number(await read('ngpio')) };
    }),
  );
  return chips.sort((a, b) => a.base - b.base);
}

/** The header chip by label; else the one named like the configured chip (old kernels: base 0). */
export function pickSysfsChip(chips: readonly SysfsChip[], configuredChip = 'auto'): SysfsChip | undefined {
  return pickHeaderChip(chips) ?? chips.find((c) => c.dir === configuredChip);
}

/** Global sysfs number of a BCM line on the chip. */
export function sysfsGpioNumber(chip: SysfsChip, line: number): number {
  if (!Number.isInteger(line) || line < 0 || line >= chip.ngpio) {
    throw new RangeError(`line ${line} is not on ${chip.label} (${chip.ngpio} lines, base ${chip.base})`);
  }
  return chip.base + line;
}
