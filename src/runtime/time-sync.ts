import { runTool } from '../cameras/run-tool.ts';

/** The box's wall-clock synchronisation when a trial starts, stored with the trial (`trials.time_sync`, JSON). */
export interface TimeSync {
  /** NTP synchronised, as the tool says; "unknown" when no tool could tell. */
  synchronized: boolean | 'unknown';
  /** chrony's "System time" offset (µs, positive: the box is fast); null when no tool gives one. */
  offset_us: number | null;
  /** Which tool answered: chronyc, timedatectl, or null. */
  tool: 'chronyc' | 'timedatectl' | null;
}

const TIMEOUT_MS = 2000;

/** "System time : 0.000012345 seconds fast of NTP time" → +12.345 µs. */
export function chronyOffsetUs(text: string): number | null {
  const m = /^System time\s*:\s*([\d.]+) seconds (fast|slow)/m.exec(text);
  if (!m) return null;
  const us = Math.round(Number(m[1]) * 1e9) / 1e3;
  return m[2] === 'fast' ? us : -us;
}

/** chronyc tracking first (it gives the offset), then timedatectl; absent tools give "unknown". Never throws. */
export async function readTimeSync(env: NodeJS.ProcessEnv = process.env): Promise<TimeSync> {
  const chrony = await runTool('chronyc', ['tracking'], { env, timeoutMs: TIMEOUT_MS });
  if (chrony.found && chrony.exitCode === 0) {
    const leap = /^Leap status\s*:\s*(.*)$/m.exec(chrony.stdout)?.[1]?.trim();
    if (leap) return { synchronized: leap === 'Normal', offset_us: chronyOffsetUs(chrony.stdout), tool: 'chronyc' };
  }
  const td = await runTool('timedatectl', ['show', '-p', 'NTPSynchronized'], { env, timeoutMs: TIMEOUT_MS });
  const v = td.found && td.exitCode === 0 ? /^NTPSynchronized=(\w+)/m.exec(td.stdout)?.[1] : undefined;
  if (v === 'yes' || v === 'no') return { synchronized: v === 'yes', offset_us: null, tool: 'timedatectl' };
  return { synchronized: 'unknown', offset_us: null, tool: null };
}
