/**
 * libgpiod tool generations. Bookworm ships 1.6 (chip and offsets as arguments, no kernel
 * debounce, block-buffered output); Trixie ships 2.x (`-c chip`, `--edges`, `--bias`,
 * `--debounce-period`, `--event-clock`). Their flags and output differ, so detect first.
 */
export interface GpiodVersion {
  major: 1 | 2;
  minor: number;
  patch: number;
  /** e.g. "2.2.1" */
  text: string;
}

/**
 * Reads the first line of `<tool> --version`: "gpiomon (libgpiod) v1.6.3",
 * "gpiomon (libgpiod) v2.2.1", or since 2.3 "gpiomon v2.3 (libgpiod v…)"; the first version
 * on the line is the tools' own.
 */
export function parseGpiodVersion(output: string): GpiodVersion | null {
  const first = output.split('\n', 1)[0] ?? '';
  const m = /\bv(\d+)\.(\d+)(?:\.(\d+))?/.exec(first);
  if (!m || !/libgpiod/.test(first)) return null;
  const major = Number(m[1]);
  if (major !== 1 && major !== 2) return null;
  return { major, minor: Number(m[2]), patch: Number(m[3] ?? 0), text: m[0].slice(1) };
}
