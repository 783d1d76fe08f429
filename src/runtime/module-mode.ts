import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import type { Readable, Writable } from 'node:stream';
import { z } from 'zod';
import type { Logger } from '../log/logger.ts';
import type { BoxRuntime } from './box-runtime.ts';
import { monoNowUs } from '../clock.ts';
import type { CommandResult } from './command-types.ts';
import type { StatusMessage } from './status.ts';

/**
 * `rigcam module`: the framing of RPi_Logger's host, which runs each camera module as a child process
 * (hw-fixtures/rpi-logger/SOURCE.md, docs/rpi-logger-host.md). Commands arrive as JSON lines on stdin with flat
 * fields (`{"command", "timestamp", "command_id", ...fields}`; the seed's nested `payload` is accepted too);
 * statuses leave as JSON lines on stdout (`{"type": "status", "status", "timestamp", "data", "command_id"}`).
 *
 * This file is the translation between the host and the box, and the only one: the host's command names
 * (`pause` ends the trial), its device ids echoed as `data.device_id`, refusals as `command_nack` (an `error`
 * takes the module out of the host's session), the seed's status fields (paths, frames_recorded, numeric
 * queue_depth). Everything else is the box's own handleCommand.
 */
const isoTimestamp = z
  .string()
  .max(40)
  .regex(/^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?$/, 'an ISO-8601 time');
const envelope = z
  .object({
    command: z.string().min(1).max(64),
    command_id: z.union([z.string().max(200), z.number()]).nullable().optional(),
    /** Informational only (the host's clock, local time): the trigger instant is the line's arrival on CLOCK_MONOTONIC. */
    timestamp: z.union([z.number(), isoTimestamp]).nullable().optional(),
    payload: z.record(z.string(), z.unknown()).optional(),
  })
  .passthrough();

/**
 * The longest command line taken (characters). Longer ones are refused with one `error` as soon as they pass it,
 * and the rest up to the line end is dropped unread into memory: a runaway writer cannot grow the module.
 */
export const MAX_LINE = 64 * 1024;

/**
 * The host's framing keys, on every command it sends (HEAD `command_protocol.py` L13-33 `CommandMessage.create`,
 * hw-fixtures/rpi-logger/SOURCE.md): `timestamp` (the host's local clock, informational: the trigger instant is the
 * line's arrival) and `command_id` (echoed on every status the command causes). Taken off here with `command` and
 * the seed's nested `payload`; every other key the host sends is a payload key, and each command's strict schema
 * (src/runtime/commands.ts) names it (assign_device's host-only fields are listed there as accepted and ignored).
 */
export const HOST_FRAMING_KEYS = ['command', 'timestamp', 'command_id', 'payload'] as const;

/**
 * The host's names → the box's. The host's `pause` (and its stop_recording, which it sends as `pause`) ends the
 * trial: only `recording_stopped` takes the host's module out of RECORDING. The seed's pause_recording stays a pause.
 */
const HOST_COMMANDS: Readonly<Record<string, string>> = {
  record: 'start_recording',
  start_record: 'start_recording',
  start: 'start_recording',
  pause: 'stop_recording',
  stop_record: 'stop_recording',
  stop: 'stop_recording',
};
/**
 * Host commands that concern a GUI module or other device kinds: nothing to do, said so (no state changes). A nack,
 * never an `error` status, which would put the host's module into ERROR. `toggle_preview` is in the host's protocol
 * (command_protocol.py L121) though nothing at HEAD sends it; the preview here is served over HTTP.
 */
const NOT_APPLICABLE = new Set(['show_window', 'hide_window', 'get_geometry', 'take_snapshot', 'set_log_level', 'xbee_data', 'xbee_send_result', 'toggle_preview']);

export interface ModeOptions {
  box: BoxRuntime;
  input: Readable;
  output: Writable;
  log: Logger;
  /** Absolute recordings root (statuses carry absolute paths for the host). */
  root: string;
  /** `ready` was already written (before the runtime loaded): the box's own is not repeated. */
  readySent?: boolean;
  /** `--camera-index N`: assign picam:N at start and announce device_ready unasked (the host sends no assign_device). */
  cameraIndex?: number;
  /** Called after `quit` (or end of input) once everything is released. */
  onQuit: () => void;
}

type Data = Record<string, unknown>;

export function runModuleMode(o: ModeOptions): { done: Promise<void> } {
  // The host gone (EPIPE): nothing to tell it any more; the recordings are finalised when stdin closes.
  o.output.on('error', (err: Error) => o.log.warn({ err: err.message }, 'stdout closed by the host'));
  const write = (msg: { status: string; data: Data; command_id: string | null } & Data): void => {
    o.output.write(JSON.stringify({ type: 'status', timestamp: Date.now() / 1000, mono_us: monoNowUs(), ...msg }) + '\n');
  };
  const status = (name: string, data: Data, commandId: string | null): void => write({ status: name, data, command_id: commandId });
  const lineError = (message: string): void => status('error', { command: null, code: 'invalid_payload', message, error: message, recoverable: true }, null);

  // The host's device id per camera (`usb:usb1-1.2`, `picam:0`), and per assign command until its camera is known.
  const deviceOfCamera = new Map<string, string>();
  const deviceOfCommand = new Map<string, string>();
  const cameraOfDevice = (deviceId: string): string | undefined => [...deviceOfCamera].find(([, d]) => d === deviceId)?.[0];
  const deviceId = (cameraId: unknown): string => (typeof cameraId === 'string' ? (deviceOfCamera.get(cameraId) ?? cameraId) : '');
  /** An assign_device in progress per host device id: a re-sent one waits for it instead of queueing a restart. */
  const assigning = new Map<string, Promise<CommandResult>>();

  const abs = (rel: unknown): string | null => (typeof rel === 'string' ? path.resolve(o.root, rel) : null);
  const queueDepth = (q: unknown): Data => {
    const obj = q && typeof q === 'object' ? (q as { frames?: number }) : null;
    return { queue_depth: obj?.frames ?? 0, queue: q };
  };

  /** A box status as the host reads it. Returns null to drop it. */
  const forHost = (m: StatusMessage): Data | null => {
    const data: Data = { ...(m.data as Data) };
    const cid = m.command_id ?? null;
    switch (m.status) {
      case 'ready':
        return o.readySent ? null : data;
      case 'error':
        // A command's refusal is answered from its result (command_nack or error); the box's own faults pass.
        return data.command === null || data.command === undefined ? data : null;
      case 'device_ready':
      case 'device_error': {
        const fromCommand = cid !== null ? deviceOfCommand.get(cid) : undefined;
        if (fromCommand && typeof data.camera_id === 'string' && m.status === 'device_ready') deviceOfCamera.set(data.camera_id, fromCommand);
        data.device_id = fromCommand ?? deviceId(data.camera_id);
        return data;
      }
      case 'recording_started': {
        const recs = (data.recordings as Array<{ camera_id: string; path: string }>) ?? [];
        const first = recs[0];
        if (first) {
          data.video_path = abs(first.path);
          data.timing_path = abs(first.path.replace(/\.ts$/, '.csv'));
          data.device_id = deviceId(first.camera_id);
          data.camera_id = first.camera_id;
        }
        return data;
      }
      case 'recording_stopped': {
        const recs = (data.recordings as Array<{ camera_id?: string; path: string; csv?: string; frames: number; duration_s: number }>) ?? [];
        const frames = recs.reduce((n, r) => n + r.frames, 0);
        const duration = recs.reduce((d, r) => Math.max(d, r.duration_s), 0);
        const first = recs[0];
        Object.assign(data, {
          frames_recorded: frames,
          duration_seconds: duration,
          actual_fps: duration > 0 ? Math.round((frames / duration) * 1000) / 1000 : 0,
          video_path: first ? abs(first.path) : null,
          timing_path: first ? abs(first.csv ?? first.path.replace(/\.ts$/, '.csv')) : null,
          device_id: deviceId(first?.camera_id),
          camera_id: first?.camera_id ?? null,
        });
        return data;
      }
      case 'telemetry':
        return { ...data, ...queueDepth(data.queue_depth), device_id: deviceId(data.camera_id) };
      case 'status_report':
        return { ...data, cameras: ((data.cameras as Data[]) ?? []).map((c) => ({ ...c, ...queueDepth(c.queue_depth), device_id: deviceId(c.camera_id) })) };
      default:
        return data;
    }
  };

  o.box.on('status', (m) => {
    const data = forHost(m);
    if (data) write({ ...m, data, command_id: m.command_id ?? null });
  });

  /** A refused command: `command_nack` while the module stays usable (the host's ack type: no state change); `error` for what is not a command at all. */
  const refuse = (r: CommandResult, commandId: string | null): void => {
    const data = { command: r.command, code: r.code ?? 'internal', message: r.error ?? 'refused', error: r.error ?? 'refused', recoverable: r.recoverable ?? true, ...(r.field ? { field: r.field } : {}) };
    if (r.code === 'unknown_command' || r.code === 'internal') status('error', data, commandId);
    else status('command_nack', { success: false, ...data }, commandId);
  };

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

  const run = async (command: string, payload: Data, commandId: string | null): Promise<CommandResult> => {
    const r = await o.box.handleCommand(command, payload, { source: 'module', triggerMonoUs: monoNowUs() }, commandId);
    if (!r.ok) refuse(r, commandId);
    return r;
  };

  const assign = (payload: Data, commandId: string | null, ack: boolean): Promise<void> => {
    const dev = typeof payload.device_id === 'string' ? payload.device_id : null;
    if (dev && commandId) deviceOfCommand.set(commandId, dev);
    // The host re-sends after 3 s without device_ready: acknowledge before the (slow) probe and start.
    if (ack) status('device_ack', { device_id: dev ?? '', camera_stable_id: payload.camera_stable_id ?? null, camera_dev_path: payload.camera_dev_path ?? null }, commandId);
    const p = run('assign_device', payload, commandId);
    if (dev) {
      assigning.set(dev, p);
      void p.finally(() => assigning.get(dev) === p && assigning.delete(dev));
    }
    return p.then(() => undefined);
  };

  /** A re-sent assign_device for a device being assigned right now: answered from that assignment, out of the queue. */
  const resentAssign = (line: string): boolean => {
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch {
      return false;
    }
    const env = envelope.safeParse(raw);
    if (!env.success || env.data.command !== 'assign_device') return false;
    const dev = env.data.device_id;
    const inflight = typeof dev === 'string' ? assigning.get(dev) : undefined;
    if (!inflight || typeof dev !== 'string') return false;
    const commandId = env.data.command_id == null ? null : String(env.data.command_id);
    status('device_ack', { device_id: dev, camera_stable_id: env.data.camera_stable_id ?? null, camera_dev_path: env.data.camera_dev_path ?? null }, commandId);
    void inflight.then((r) => {
      const cam = r.ok ? o.box.cameras.get(String(r.data?.camera_id)) : undefined;
      if (cam) status('device_ready', { ...cam.describe(), device_id: dev }, commandId);
      else status('device_error', { camera_id: null, device_id: dev, error: r.error ?? 'assign failed', message: r.error ?? 'assign failed' }, commandId);
    });
    return true;
  };

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
      lineError(`bad command line: ${env.error.issues.map((i) => `${i.path.join('.') || 'line'}: ${i.message}`).join('; ')}`);
      return;
    }
    const { command: rawCommand, command_id, payload: nested } = env.data;
    const flat: Data = Object.fromEntries(Object.entries(env.data).filter(([k]) => !(HOST_FRAMING_KEYS as readonly string[]).includes(k)));
    const command = rawCommand.toLowerCase();
    const commandId = command_id == null ? null : String(command_id);
    const payload: Data = { ...flat, ...(nested ?? {}) };
    switch (command) {
      case 'quit':
        await quit(commandId);
        return;
      case 'get_status':
        status('status_report', forHost({ status: 'status_report', data: o.box.status() } as StatusMessage) ?? {}, commandId);
        return;
      case 'assign_device':
        await assign(payload, commandId, true);
        return;
      case 'unassign_device': {
        // The host names the device by its id.
        const dev = typeof payload.device_id === 'string' ? payload.device_id : undefined;
        const cam = dev !== undefined ? cameraOfDevice(dev) : undefined;
        if (dev !== undefined && cam === undefined) {
          // Not a device this module took: never the only camera by default.
          refuse({ ok: false, command, code: 'not_found', error: `no device "${dev.slice(0, 200)}" is assigned to this module`, recoverable: true }, commandId);
          return;
        }
        const { device_id: _dev, ...rest } = payload;
        void _dev;
        const r = await run('unassign_device', cam ? { ...rest, camera_id: cam } : rest, commandId);
        if (r.ok) status('device_unassigned', { device_id: dev ?? deviceId(r.data?.camera_id), port_released: true }, commandId);
        return;
      }
      case 'unassign_all_devices': {
        const r = await run('unassign_all_devices', payload, commandId);
        const released = r.ok && Array.isArray(r.data?.released) ? (r.data.released as unknown[]).map(String) : [];
        // The host waits up to 0.9 s for an answer with its command_id: always one, as its own modules do.
        if (!released.length) status('device_unassigned', { device_id: '', port_released: false }, commandId);
        for (const id of released) {
          status('device_unassigned', { device_id: deviceId(id), port_released: true }, commandId);
          deviceOfCamera.delete(id);
        }
        return;
      }
    }
    if (NOT_APPLICABLE.has(command)) {
      const message = `${command} does not apply to rigcam (no window, no other devices): nothing done`;
      status('command_nack', { success: false, command, code: 'unknown_command', message, error: message, recoverable: true }, commandId);
      return;
    }
    const name = HOST_COMMANDS[command] ?? command;
    // A record while a trial is paused: that trial is finalised first, then the new one starts (nothing left open).
    if (name === 'start_recording' && o.box.status().paused) {
      const stopped = await run('stop_recording', {}, null);
      if (!stopped.ok) return;
    }
    await run(name, payload, commandId);
  };

  /** One complete line from the host (without its line end). */
  const onLine = (line: string): void => {
    if (!line.trim()) return;
    if (resentAssign(line)) return;
    queue = queue.then(() => handle(line)).catch((err: Error) => o.log.error({ err: err.message }, 'module command failed'));
  };
  // Lines end at \n, \r\n or \r (an empty line between \r and \n is skipped). Memory is bounded by MAX_LINE.
  const decoder = new StringDecoder('utf8');
  let partial = '';
  let overlong = false;
  const onData = (chunk: Buffer | string): void => {
    const text = typeof chunk === 'string' ? chunk : decoder.write(chunk);
    let start = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      const piece = text.slice(start, i);
      start = i + 1;
      if (overlong) overlong = false;
      else if (partial.length + piece.length > MAX_LINE) lineError(`line too long (over ${MAX_LINE} characters): refused`);
      else onLine(partial + piece);
      partial = '';
    }
    if (overlong) return;
    const rest = text.slice(start);
    if (partial.length + rest.length > MAX_LINE) {
      overlong = true;
      partial = '';
      lineError(`line too long (over ${MAX_LINE} characters): refused`);
    } else partial += rest;
  };
  const onEnd = (): void => {
    if (!overlong && partial) onLine(partial);
    partial = '';
    // The host went away: release the cameras as if it had said quit.
    void queue.then(() => quit(null));
  };
  const done = new Promise<void>((resolve) => {
    finish = () => {
      o.input.off('data', onData);
      o.input.off('end', onEnd);
      o.input.pause();
      resolve();
    };
    o.input.on('data', onData);
    o.input.once('end', onEnd);
  });
  if (o.cameraIndex !== undefined) {
    const n = o.cameraIndex;
    queue = queue.then(() => assign({ camera_type: 'picam', camera_index: n, device_id: `picam:${n}`, display_name: `RPi:Cam${n}` }, 'cli_auto_assign', false));
  }
  return { done };
}
