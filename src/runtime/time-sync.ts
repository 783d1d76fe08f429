import { runTool, type ToolResult } from '../cameras/run-tool.ts';

/** The box's wall-clock synchronisation when a trial starts, stored with the trial (`trials.time_sync`, JSON). */
export interface TimeSync {
  /** NTP synchronised, as the tool says; "unknown" when no tool could tell. */
  synchronized: boolean | 'unknown';
  /** chrony's "System time" offset (µs, positive: the box is fast); null when no tool gives one. */
  offset_us: number | null;
  /** Which tool answered: chronyc, timedatectl, or null. */
  tool: 'chronyc' | 'timedatectl' | null;
}

export const TIME_SYNC_TIMEOUT_MS = 2000;

/** Runs a tool by name: the service's ToolShell (no fork of rigcam's Node process), or execFile for a one-off. */
export type ToolRunner = (command: string, args: string[]) => Promise<Pick<ToolResult, 'found' | 'exitCode' | 'stdout'>>;

/** "System time : 0.000012345 seconds fast of NTP time" → +12.345 µs. */
export function chronyOffsetUs(text: string): number | null {
  const m = /^System time\s*:\s*([\d.]+) seconds (fast|slow)/m.exec(text);
  if (!m) return null;
  const us = Math.round(Number(m[1]) * 1e9) / 1e3;
  return m[2] === 'fast' ? us : -us;
}

/**
 * chronyc tracking first (it gives the offset), then timedatectl; absent tools give "unknown". Never throws.
 * The default runner forks this process (fine for the CLI; the service passes its ToolShell).
 */
export async function readTimeSync(run: ToolRunner = (c, a) => runTool(c, a, { timeoutMs: TIME_SYNC_TIMEOUT_MS })): Promise<TimeSync> {
  const chrony = await run('chronyc', ['tracking']).catch(() => null);
  if (chrony?.found && chrony.exitCode === 0) {
    const leap = /^Leap status\s*:\s*(.*)$/m.exec(chrony.stdout)?.[1]?.trim();
    if (leap) return { synchronized: leap === 'Normal', offset_us: chronyOffsetUs(chrony.stdout), tool: 'chronyc' };
  }
  const td = await run('timedatectl', ['show', '-p', 'NTPSynchronized']).catch(() => null);
  const v = td?.found && td.exitCode === 0 ? /^NTPSynchronized=(\w+)/m.exec(td.stdout)?.[1] : undefined;
  if (v === 'yes' || v === 'no') return { synchronized: v === 'yes', offset_us: null, tool: 'timedatectl' };
  return { synchronized: 'unknown', offset_us: null, tool: null };
}
