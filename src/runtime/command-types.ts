import type { ErrorCode } from './errors.ts';

/**
 * The transport-neutral command entry point every transport (HTTP, serial, GPIO, CLI, module stdio)
 * calls. The runtime implements it; triggers and the API depend only on this interface.
 */
export type CommandSource = 'api' | 'serial' | 'gpio' | 'cli' | 'module' | 'internal';

export interface CommandContext {
  source: CommandSource;
  /** CLOCK_MONOTONIC time of the trigger in microseconds (kernel edge time, first byte arrival, ...). */
  triggerMonoUs?: number;
}

export interface CommandResult {
  ok: boolean;
  command: string;
  /** Present when ok is false. */
  error?: string;
  /** Present when ok is false: why, for transports to map (HTTP status, serial ERR). */
  code?: ErrorCode;
  /** For invalid_payload: the payload field at fault. */
  field?: string;
  recoverable?: boolean;
  /** Command-specific result (ids, paths, trial number, status...). */
  data?: Record<string, unknown>;
}

export interface CommandHandler {
  handleCommand(command: string, payload: unknown, ctx: CommandContext): Promise<CommandResult>;
}

// The clock lives in src/clock.ts; re-exported for code that still imports it from here.
export { monoNowUs } from '../clock.ts';
