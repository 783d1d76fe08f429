/**
 * Why a command was refused, as a code every transport maps without reading the message: HTTP picks its status
 * from it (src/api/http-error.ts), serial answers `ERR <code> <message>`, module mode puts it in the error status.
 */
export const ERROR_CODES = [
  /** The payload does not match the command's schema (nothing changed). */
  'invalid_payload',
  /** No such command (or an internal one sent from a transport). */
  'unknown_command',
  /** The camera, session or trial named does not exist. */
  'not_found',
  /** Refused in the current state: already recording, not recording, trial exists, camera recording... */
  'conflict',
  /** The box is doing something that must finish first (a camera starting, not ready). */
  'busy',
  /** Not enough free disk to start, or the disk filled up. */
  'disk_full',
  /** A device or tool failed (camera cannot be probed or started, v4l2-ctl failed). */
  'unavailable',
  /** The service is stopping: no new commands. */
  'shutting_down',
  /** A fault of rigcam itself (logged). */
  'internal',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** A refusal the caller can act on: reported as an error status with its code; nothing changed. */
export class CommandError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly recoverable = true,
    /** For invalid_payload: the payload field at fault (`trial_number`, `metadata.x`). */
    readonly field: string | null = null,
  ) {
    super(message);
  }
}

/** Re-throw any error as a CommandError, keeping a CommandError's own code. */
export function asCommandError(err: unknown, code: ErrorCode, prefix = ''): CommandError {
  if (err instanceof CommandError) return err;
  return new CommandError(code, `${prefix}${(err as Error).message}`);
}
