import type { z } from 'zod';
import { formatIssues, keyPath } from '../config/load.ts';
import type { Logger } from '../log/logger.ts';
import { monoNowUs, type CommandContext, type CommandHandler, type CommandResult, type CommandSource } from './command-types.ts';
import { CommandError } from './errors.ts';
import type { EventBus } from './event-bus.ts';

/** What a handler knows about the command it runs. */
export interface ExecContext {
  source: CommandSource;
  /** The trigger instant, taken on arrival (not when the queue reaches the command). */
  triggerMonoUs: number;
  commandId: string | null;
}

/** A handler's answer: the result's `data` (ids, paths, trial number...). */
export type CommandData = Record<string, unknown>;

/** One row of the command table: its payload schema and its handler, which gets the parsed payload. */
export interface CommandSpec {
  /** Raised by the box itself (device lost, recorder failed, disk full); a transport can never send it. */
  readonly internal: boolean;
  run(payload: unknown, ctx: ExecContext): Promise<CommandData>;
}

/** A key as a refusal quotes it: hostile keys can be long or hold control characters. */
const quoteKey = (k: string): string => JSON.stringify(k.length > 64 ? `${k.slice(0, 64)}…` : k);
/** At most this much of a refusal's text: a payload with thousands of bad fields gets a short answer. */
const MAX_REFUSAL_CHARS = 500;

/**
 * Validate completely, then run: a bad payload is an invalid_payload error naming the field and changes nothing.
 * An unknown key (every payload schema is strict) is named as the field, so a misspelt `lable` says `lable`.
 */
export function parsePayload<S extends z.ZodType>(schema: S, payload: unknown, what = 'payload'): z.infer<S> {
  const r = schema.safeParse(payload ?? {});
  if (r.success) return r.data;
  // A misspelt key usually also leaves a required one missing: the field named is the unknown key, the cause.
  const first = r.error.issues.find((i) => i.code === 'unrecognized_keys') ?? r.error.issues[0];
  const problems = r.error.issues.map((i) => {
    if (i.code !== 'unrecognized_keys') return formatIssues([i])[0]!;
    const where = i.path.length ? `${keyPath(i.path)}: ` : '';
    const shown = i.keys.slice(0, 5).map(quoteKey).join(', ');
    return `${where}unknown key${i.keys.length > 1 ? 's' : ''} ${shown}${i.keys.length > 5 ? ` and ${i.keys.length - 5} more` : ''}`;
  });
  let message = `invalid ${what}: ${problems.join('; ')}`;
  if (message.length > MAX_REFUSAL_CHARS) message = `${message.slice(0, MAX_REFUSAL_CHARS - 1)}…`;
  const fieldPath = first ? (first.code === 'unrecognized_keys' ? [...first.path, first.keys[0] ?? ''] : first.path) : [];
  const field = fieldPath.length ? keyPath(fieldPath.map((k) => (typeof k === 'string' && k.length > 64 ? `${k.slice(0, 64)}…` : k))) : null;
  throw new CommandError('invalid_payload', message, true, field);
}

/** The most of a payload the journal keeps (a refused hostile payload can be 64 KB or nested thousands deep). */
const MAX_JOURNAL_PAYLOAD_CHARS = 8 * 1024;

/** A payload as the journal stores it: itself, or a note of what was left out when it is too big or too deep. */
export function journalPayload(payload: unknown): unknown {
  let text: string;
  try {
    text = JSON.stringify(payload ?? {});
  } catch {
    return { omitted: 'payload too deeply nested to journal' };
  }
  return text.length <= MAX_JOURNAL_PAYLOAD_CHARS ? (payload ?? {}) : { omitted: 'payload too large to journal', chars: text.length };
}

export function defineCommand<S extends z.ZodType>(schema: S, run: (p: z.infer<S>, ctx: ExecContext) => CommandData | Promise<CommandData>, internal = false): CommandSpec {
  return { internal, run: async (payload, ctx) => run(parsePayload(schema, payload), ctx) };
}

export interface CommandBusOptions {
  table: ReadonlyMap<string, CommandSpec>;
  aliases: Readonly<Record<string, string>>;
  bus: EventBus;
  log: Logger;
}

/**
 * The one way anything changes the box: a table of command → schema → handler. Commands run one at a time in
 * arrival order — transports' commands and the box's own internal ones (device lost, recorder failed, disk full)
 * alike — so no two state changes ever interleave. Each is answered to its caller, reported as an `error` status
 * when refused, and announced on the bus for the journal.
 */
export class CommandBus implements CommandHandler {
  private queue: Promise<unknown> = Promise.resolve();
  private closing = false;

  constructor(private readonly o: CommandBusOptions) {}

  /** The transport entry point: internal commands are unknown here. */
  handleCommand(command: string, payload: unknown, ctx: CommandContext, commandId?: string | null): Promise<CommandResult> {
    return this.enqueue(command, payload, ctx, commandId ?? null, false);
  }

  /** Queue one of the box's own commands (source `internal`). */
  raise(command: string, payload: unknown): Promise<CommandResult> {
    return this.enqueue(command, payload, { source: 'internal' }, null, true);
  }

  /** No new commands from transports from now on; resolves once the running and queued ones are done. */
  close(): Promise<void> {
    this.closing = true;
    return this.idle();
  }

  /** Resolves once every command queued so far has run. */
  idle(): Promise<void> {
    return this.queue.then(() => undefined);
  }

  /** The canonical name of a command a transport may send, or null (for a 400 before anything is queued). */
  resolve(command: string): string | null {
    const name = this.o.aliases[command] ?? command;
    const spec = this.o.table.get(name);
    return spec && !spec.internal ? name : null;
  }

  private enqueue(command: string, payload: unknown, ctx: CommandContext, commandId: string | null, internal: boolean): Promise<CommandResult> {
    const exec: ExecContext = { source: ctx.source, triggerMonoUs: ctx.triggerMonoUs ?? monoNowUs(), commandId };
    const run = this.queue.then(() => this.execute(command, payload, exec, internal));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async execute(command: string, payload: unknown, ctx: ExecContext, internal: boolean): Promise<CommandResult> {
    let result: CommandResult;
    try {
      // The box's own commands still run while it closes: they are how shutdown itself finalises the trial.
      if (this.closing && !internal) throw new CommandError('shutting_down', 'the service is shutting down', false);
      const name = internal ? command : this.resolve(command);
      const spec = name === null ? undefined : this.o.table.get(name);
      if (!spec || spec.internal !== internal) throw new CommandError('unknown_command', `unknown command: ${command}`);
      result = { ok: true, command, data: await spec.run(payload, ctx) };
    } catch (err) {
      const e = err instanceof CommandError ? err : new CommandError('internal', (err as Error).message);
      if (!(err instanceof CommandError)) this.o.log.error({ command, err: e.message }, 'command failed');
      result = { ok: false, command, error: e.message, code: e.code, recoverable: e.recoverable, ...(e.field ? { field: e.field } : {}) };
      this.o.bus.report('error', { command, code: e.code, error: e.message, message: e.message, recoverable: e.recoverable }, null, ctx.commandId);
    }
    this.o.bus.emit('command', { name: command, source: ctx.source, monoUs: ctx.triggerMonoUs, payload: journalPayload(payload), result });
    return result;
  }
}
