import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { silentLogger } from '../../src/log/logger.ts';
import type { Store, SyncEdgeRow } from '../../src/storage/store.ts';
import { SyncRecorder } from '../../src/sync/sync-recorder.ts';
import { createGpioTriggers, gpioConfigSchema, type GpioConfigInput } from '../../src/triggers/gpio/index.ts';

export const STANDINS = fileURLToPath(new URL('../standins', import.meta.url));
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A gpiomon v2 recording (its default output, which the stand-in replays) of pulses on one line of gpiochip0. */
export function writePulseFixture(file: string, line: number, onsetsNs: readonly bigint[], widthNs = 10_000_000n): void {
  const stamp = (ns: bigint) => `${ns / 1_000_000_000n}.${String(ns % 1_000_000_000n).padStart(9, '0')}`;
  const rows: string[] = [];
  for (const t of onsetsNs) rows.push(`${stamp(t)}\trising\tgpiochip0 ${line}`, `${stamp(t + widthNs)}\tfalling\tgpiochip0 ${line}`);
  writeFileSync(file, rows.join('\n') + '\n');
}

export async function until<T>(what: string, fn: () => T | undefined | false, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/**
 * The GPIO lines of a box (the real controller, spawning the gpiomon / gpioset stand-ins) with the real SyncRecorder
 * writing into `store`.
 */
export function syncLines(store: Store, dir: string, config: GpioConfigInput, env: Record<string, string>, context = () => ({ sessionId: null as number | null, trialId: null as number | null })) {
  const gpioCfg = gpioConfigSchema.parse(config);
  const gpio = createGpioTriggers(gpioCfg, {
    handler: { handleCommand: async (command) => ({ ok: true, command }) },
    env: { ...process.env, PATH: `${STANDINS}:${process.env.PATH}`, GPIOD_STANDIN_BOARD: 'rpi4', GPIOD_STANDIN_STATE_DIR: dir, ...env },
    backoff: { initialMs: 100 },
  });
  const recorder = new SyncRecorder({ store, gpio, config: gpioCfg, log: silentLogger(), context, timeSync: async () => ({ synchronized: true, offset_us: 12, tool: 'chronyc' }) });
  return {
    gpio,
    recorder,
    start: async () => {
      await recorder.start();
      gpio.start();
    },
    stop: async () => {
      await gpio.stop();
      recorder.stop();
    },
    edges: (direction: 'in' | 'out'): SyncEdgeRow[] => store.syncEdgesPage(0, 1_000_000, { direction }),
  };
}

export const fixturePath = (dir: string, name: string): string => path.join(dir, name);
