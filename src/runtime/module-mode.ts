import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { z } from 'zod';
import type { Logger } from '../log/logger.ts';
import type { BoxRuntime } from './box-runtime.ts';
import { monoNowUs } from '../clock.ts';
import type { StatusDataMap, StatusMessage, StatusName } from './status.ts';

/**
 * `rigcam module`: the framing of the Raspberry Pi logger that drives each camera module as a child process.
 * Commands arrive as JSON lines on stdin with flat fields (`{"command", "timestamp", "command_id", ...fields}`;
 * the seed's nested `payload` is accepted too); statuses leave as JSON lines on stdout
 * (`{"type": "status", "status", "timestamp", "data", "command_id"}`). The host expects `device_ack` at once after
 * `assign_device`, `device_unassigned` after `unassign_all_devices`, `status_report` for `get_status`, `quitting`
 * for `quit`, and an error's text in `data.message`. Everything else is the box's own handleCommand.
 */
const envelope = z
  .object({
    command: z.string().min(1).max(64),
    command_id: z.union([z.string().max(200), z.number()]).optional(),
    timestamp: z.number().optional(),
    payload: z.record(z.string(), z.unknown()).optional(),
  })
  .passthrough();

const MAX_LINE = 64 * 1024;

export interface ModeOptions {
  box: BoxRuntime;
  input: Readable;
  output: Writable;
  log: Logger;
  /** Called after `quit` (or end of input) once everything is released. */
  onQuit: () => void;
}

export function runModuleMode(o: ModeOptions): { done: Promise<void> } {
  const write = (msg: StatusMessage): void => {
    o.output.write(JSON.stringify(msg) + '\n');
  };
  const status = <K extends StatusName>(name: K, data: StatusDataMap[K], commandId: string | null): void =>
    write({ type: 'status', status: name, timestamp: Date.now() / 1000, mono_us: monoNowUs(), data, command_id: commandId } as StatusMessage);
  const lineError = (message: string): void => status('error', { command: null, code: 'invalid_payload', message, error: message, recoverable: true }, null);

  o.box.on('status', (m) => write(m));

  let queue: Promise<void> = Promise.resolve();
  let quitting = false;
  const quit = async (commandId: string | null): Promise<void> => {
    if (quitting) return;
    quitting = true;
    await o.box.shutdown();
    status('quitting', {}, commandId);
    o.onQuit();
    finish();
  };
  let finish: () => void = () => undefined;

  const handle = async (line: string): Promise<void> => {
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch {
      lineError('not a JSON line');
      return;
    }
    const env = envelope.safeParse(raw);
    if (!env.success) {
      const message = `bad command line: ${env.error.issues.map((i) => `${i.path.join('.') || 'line'}: ${i.message}`).join('; ')}`;
      lineError(message);
      return;
    }
    const { command, command_id, timestamp: _ts, payload: nested, ...flat } = env.data;
    void _ts;
    const commandId = command_id === undefined ? null : String(command_id);
    const payload = { ...flat, ...(nested ?? {}) };
    switch (command) {
      case 'quit':
        await quit(commandId);
        return;
      case 'get_status':
        status('status_report', o.box.status(), commandId);
        return;
      case 'assign_device':
        // The host re-sends after 3 s without an ack: acknowledge before the (slow) probe and start.
        status('device_ack', { camera_stable_id: flat.camera_stable_id ?? null, camera_dev_path: flat.camera_dev_path ?? null }, commandId);
        break;
    }
    const result = await o.box.handleCommand(command, payload, { source: 'module' }, commandId);
    if (command === 'unassign_all_devices' && result.ok) {
      const released = result.data?.released;
      for (const id of Array.isArray(released) ? released.map(String) : []) status('device_unassigned', { device_id: id, port_released: true }, commandId);
    }
  };

  const rl = createInterface({ input: o.input, crlfDelay: Infinity });
  const done = new Promise<void>((resolve) => {
    finish = () => {
      rl.close();
      resolve();
    };
    rl.on('line', (line) => {
      if (!line.trim()) return;
      if (line.length > MAX_LINE) {
        lineError('line too long');
        return;
      }
      queue = queue.then(() => handle(line)).catch((err: Error) => o.log.error({ err: err.message }, 'module command failed'));
    });
    rl.on('close', () => {
      // The host went away: release the cameras as if it had said quit.
      void queue.then(() => quit(null));
    });
  });
  return { done };
}
