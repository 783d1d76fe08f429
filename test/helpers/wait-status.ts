import type { BoxRuntime } from '../../src/runtime/box-runtime.ts';
import type { StatusMessage } from '../../src/runtime/status.ts';

/** The next status `name` (matching `pred`) the box emits, or a rejection naming it after `timeoutMs`. */
export function waitForStatus(box: BoxRuntime, name: string, pred: (m: StatusMessage) => boolean = () => true, timeoutMs = 15_000): Promise<StatusMessage> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      box.off('status', on);
      reject(new Error(`no ${name} status within ${timeoutMs} ms`));
    }, timeoutMs);
    const on = (m: StatusMessage): void => {
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
