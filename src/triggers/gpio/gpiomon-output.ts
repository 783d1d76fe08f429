/** One gpiomon event: electrical edge and kernel timestamp (CLOCK_MONOTONIC) in microseconds. */
export interface GpiomonEvent {
  offset: number;
  rising: boolean;
  monoUs: number;
}

/**
 * Reads a line of our own format (see GPIOMON_FORMAT). v1 "%o %e %s %n": edge 1/0 and the
 * nanoseconds printed WITHOUT zero padding ("17 1 1234 5000" is 1234.000005 s).
 * v2 "%o %e %S": edge 1 rising / 2 falling, seconds with 9 decimals.
 */
export function parseGpiomonLine(major: 1 | 2, line: string): GpiomonEvent | null {
  const text = line.trim();
  if (major === 1) {
    const m = /^(\d+) ([01]) (\d+) (\d{1,9})$/.exec(text);
    if (!m) return null;
    return { offset: Number(m[1]), rising: m[2] === '1', monoUs: Number(m[3]) * 1e6 + Math.floor(Number(m[4]) / 1000) };
  }
  const m = /^(\d+) ([12]) (\d+)\.(\d{9})$/.exec(text);
  if (!m) return null;
  return { offset: Number(m[1]), rising: m[2] === '1', monoUs: secondsToUs(m[3]!, m[4]!) };
}

function secondsToUs(sec: string, frac9: string): number {
  return Number(sec) * 1e6 + Math.floor(Number(frac9) / 1000);
}

/** A line of gpiomon's default (human) output, for logs and recordings. */
export interface GpiomonDefaultEvent {
  rising: boolean;
  monoUs: number;
  offset?: number;
  chip?: string;
  name?: string;
}

/**
 * v1: "event:  RISING EDGE offset: 17 timestamp: [    1234.567890123]"
 * v2: "1234.567890123\trising\tgpiochip0 17", with ` "GPIO17"` when the line is named, or only
 * `"GPIO17"` when it was requested by name.
 */
export function parseGpiomonDefaultLine(line: string): GpiomonDefaultEvent | null {
  const text = line.replace(/\r$/, '');
  const v1 = /^event:\s+(RISING|FALLING) EDGE offset: (\d+) timestamp: \[\s*(\d+)\.(\d{9})\]$/.exec(text);
  if (v1) return { rising: v1[1] === 'RISING', offset: Number(v1[2]), monoUs: secondsToUs(v1[3]!, v1[4]!) };
  const v2 = /^(\d+)\.(\d{9})\t(rising|falling)\t(.+)$/.exec(text);
  if (!v2) return null;
  const event: GpiomonDefaultEvent = { rising: v2[3] === 'rising', monoUs: secondsToUs(v2[1]!, v2[2]!) };
  const id = v2[4]!;
  const full = /^(\S+) (\d+)(?: "?([^"]*)"?)?$/.exec(id);
  if (full) {
    event.chip = full[1];
    event.offset = Number(full[2]);
    if (full[3] !== undefined) event.name = full[3];
  } else {
    event.name = id.replace(/^"(.*)"$/, '$1');
  }
  return event;
}
