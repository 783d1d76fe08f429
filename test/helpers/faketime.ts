import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * libfaketime (Debian's libfaketime), preloaded, steps CLOCK_REALTIME under a process while CLOCK_MONOTONIC runs on:
 * what `date -s` or chrony's makestep does to a box, without stepping this machine's clock. The offset is read from
 * a file on every call (FAKETIME_NO_CACHE), so a test steps the clock by rewriting it.
 */
export const libfaketime = ((): string | null => {
  for (const d of ['/usr/lib', ...readdirSync('/usr/lib').filter((n) => n.endsWith('-linux-gnu')).map((n) => `/usr/lib/${n}`)]) {
    const so = path.join(d, 'faketime', 'libfaketime.so.1');
    if (existsSync(so)) return so;
  }
  return null;
})();

/** Why a test that steps the clock cannot run here (for skipUnlessCi), or null. */
export const libfaketimeMissing = libfaketime ? null : 'libfaketime is not installed (apt-get install libfaketime)';

/** The environment of a child whose wall clock follows `stepFile` (`+0` now: unstepped). */
export function faketimeEnv(stepFile: string): NodeJS.ProcessEnv {
  writeFileSync(stepFile, '+0\n');
  return { ...process.env, LD_PRELOAD: libfaketime!, FAKETIME_TIMESTAMP_FILE: stepFile, FAKETIME_NO_CACHE: '1', FAKETIME_DONT_FAKE_MONOTONIC: '1' };
}
