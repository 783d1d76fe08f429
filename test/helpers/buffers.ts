import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** A full garbage collection (the test process runs without --expose-gc). */
export function collect(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

/**
 * How far process.memoryUsage().arrayBuffers rose while `run` ran (sampled every turn of the event loop, and at
 * the end). Buffers live outside V8's heap and are freed only when the collector reaches them, so what a piece of
 * work leaves behind shows here until then; a full collection first, so that an earlier piece of work's garbage is
 * not freed during this one and hides it.
 */
export async function buffersGrowth(run: () => Promise<unknown>): Promise<number> {
  collect();
  const base = process.memoryUsage().arrayBuffers;
  let peak = base;
  let on = true;
  const sample = (): void => {
    peak = Math.max(peak, process.memoryUsage().arrayBuffers);
    if (on) setImmediate(sample);
  };
  setImmediate(sample);
  await run().finally(() => (on = false));
  return Math.max(peak, process.memoryUsage().arrayBuffers) - base;
}
