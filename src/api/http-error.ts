import type { NextFunction, Request, Response } from 'express';
import type { z } from 'zod';
import type { ErrorCode } from '../runtime/errors.ts';

/** The HTTP status of each refusal code of the runtime: the one place this is decided. */
export const HTTP_STATUS_OF_CODE: Readonly<Record<ErrorCode, number>> = {
  invalid_payload: 400,
  unknown_command: 400,
  not_found: 404,
  conflict: 409,
  busy: 409,
  disk_full: 507,
  unavailable: 503,
  shutting_down: 503,
  internal: 500,
};

/** A refusal with an HTTP status and a message meant for the client; `field` names the offending input. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly field: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** "body.session", "query.format", "params.id": where a zod issue points, prefixed by the request part. */
function issuePath(part: string, p: ReadonlyArray<PropertyKey>): string {
  return [part, ...p.map(String)].join('.');
}

function describeIssues(part: string, issues: ReadonlyArray<z.core.$ZodIssue>): { message: string; field: string } {
  const msgs = issues.map((i) => {
    if (i.code === 'unrecognized_keys') return `${issuePath(part, i.path)}: unknown field${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => `"${k}"`).join(', ')}`;
    return `${issuePath(part, i.path)}: ${i.message}`;
  });
  const first = issues[0];
  const field = first
    ? first.code === 'unrecognized_keys'
      ? issuePath(part, [...first.path, first.keys[0] ?? ''])
      : issuePath(part, first.path)
    : part;
  return { message: msgs.join('; '), field };
}

/** Parse one part of a request or throw a 400 naming the field. */
export function parsePart<T extends z.ZodType>(part: 'body' | 'query' | 'params', schema: T, value: unknown): z.infer<T> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const { message, field } = describeIssues(part, r.error.issues);
  throw new HttpError(400, message, field);
}

export function sendError(res: Response, err: HttpError): void {
  for (const [k, v] of Object.entries(err.headers)) res.setHeader(k, v);
  res.status(err.status).json({ ok: false, error: err.message, ...(err.field ? { field: err.field } : {}) });
}

/**
 * The last error handler: HttpErrors and the body parser's client errors (bad JSON, too large, wrong charset)
 * become a 4xx JSON answer; anything else is logged and answered 500 without internals.
 */
export function errorHandler(onInternal: (err: Error) => void) {
  return (err: Error & { status?: number; type?: string }, _req: Request, res: Response, _next: NextFunction): void => {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (err instanceof HttpError) return sendError(res, err);
    if (err.status && err.status >= 400 && err.status < 500) {
      const what = err.type === 'entity.parse.failed' ? 'body: not valid JSON' : `body: ${err.message}`;
      return sendError(res, new HttpError(err.status, what, 'body'));
    }
    onInternal(err);
    res.status(500).json({ ok: false, error: 'internal error' });
  };
}
