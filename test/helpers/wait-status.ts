import type { BoxRuntime } from '../../src/runtime/box-runtime.ts';
import type { StatusMessage } from '../../src/runtime/status.ts';

/**
 * A status seen from a test: any name, its data as a plain record. Tests look into statuses by name without
 * narrowing the typed union first.
 */
export type SeenStatus = Omit<StatusMessage, 'status' | 'data'> & { status: string; data: Record<string, unknown> };

export const seen = (m: StatusMessage): SeenStatus => m as unknown as SeenStatus;

/** The next status `name` (matching `pred`) the box emits, or a rejection naming it after `timeoutMs`. */
export function waitForStatus(box: BoxRuntime, name: string, pred: (m: SeenStatus) => boolean = () => true, timeoutMs = 15_000): Promise<SeenStatus> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      box.off('status', on);
      reject(new Error(`no ${name} status within ${timeoutMs} ms`));
    }, timeoutMs);
    const on = (msg: StatusMessage): void => {
      const m = seen(msg);
      if (m.status === name && pred(m)) {
        clearTimeout(t);
        box.off('status', on);
        resolve(m);
      }
    };
    box.on('status', on);
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
