/** Which gpiochip carries the 40-pin header, from `gpiodetect` output or sysfs labels. */

export interface GpioChipInfo {
  name: string;
  label: string;
  lines: number;
}

/** Header controllers by board: Pi 5 (RP1), Pi 4 / 400 / CM4, Pi 3 / Zero 2 W and older. */
export const HEADER_CHIP_LABELS = ['pinctrl-rp1', 'pinctrl-bcm2711', 'pinctrl-bcm2835', 'pinctrl-bcm2712'] as const;

/** Parses `gpiodetect` rows: "gpiochip0 [pinctrl-bcm2711] (58 lines)" (same in libgpiod 1 and 2). */
export function parseGpiodetect(output: string): GpioChipInfo[] {
  const chips: GpioChipInfo[] = [];
  for (const row of output.split('\n')) {
    const m = /^\s*(gpiochip\d+) \[(.*)\] \((\d+) lines\)\s*$/.exec(row);
    if (m) chips.push({ name: m[1]!, label: m[2]!, lines: Number(m[3]) });
  }
  return chips;
}

/** The header chip: on a Pi 5 with an early kernel it is gpiochip4, otherwise gpiochip0. */
export function pickHeaderChip<T extends { label: string }>(chips: readonly T[]): T | undefined {
  for (const label of HEADER_CHIP_LABELS) {
    const chip = chips.find((c) => c.label === label);
    if (chip) return chip;
  }
  return undefined;
}
