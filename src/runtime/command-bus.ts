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

/** Validate completely, then run: a bad payload is an invalid_payload error naming the field and changes nothing. */
export function parsePayload<S extends z.ZodType>(schema: S, payload: unknown, what = 'payload'): z.infer<S> {
  const r = schema.safeParse(payload ?? {});
  if (r.success) return r.data;
  const first = r.error.issues[0];
  const field = first && first.path.length ? keyPath(first.path) : null;
  throw new CommandError('invalid_payload', `invalid ${what}: ${formatIssues(r.error.issues).join('; ')}`, true, field);
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
    this.o.bus.emit('command', { name: command, source: ctx.source, monoUs: ctx.triggerMonoUs, payload: payload ?? {}, result });
    return result;
  }
}
