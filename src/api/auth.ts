import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { HttpError } from './http-error.ts';

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** Constant-time comparison: both sides are hashed first so neither length nor content leaks through timing. */
export function tokenMatches(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

/** The token a request carries: `Authorization: Bearer <token>`, or `?token=` where the route allows it. */
function presentedToken(req: Request, allowQuery: boolean): string | null {
  const h = req.get('authorization');
  if (h) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
    return m ? m[1]! : null;
  }
  if (allowQuery) {
    const q = (req.query as Record<string, unknown>).token;
    if (typeof q === 'string') return q;
  }
  return null;
}

/**
 * Guard for data, control and preview routes. `allowQuery` is for the GET routes a browser element must open
 * without headers (EventSource, <img>, download links): they also take `?token=`.
 */
export function requireToken(token: string | null, allowQuery = false) {
  return (req: Request, _res: Response, next: NextFunction): void => {
    if (!token) return next();
    const given = presentedToken(req, allowQuery);
    if (given !== null && tokenMatches(given, token)) return next();
    next(
      new HttpError(401, `unauthorized: send Authorization: Bearer <token>${allowQuery ? ' (or ?token=<token>)' : ''}`, given === null ? 'authorization' : 'token', {
        'www-authenticate': 'Bearer realm="rigcam"',
      }),
    );
  };
}

const LOOPBACK_HOST = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])(?::\d{1,5})?$/i;

/**
 * Without a token the service listens on loopback only; then it also answers only requests addressed to a
 * loopback name, so a web page on another site cannot reach it through DNS rebinding.
 */
export function loopbackHostOnly(token: string | null) {
  return (req: Request, _res: Response, next: NextFunction): void => {
    if (token) return next();
    const host = req.get('host') ?? '';
    if (LOOPBACK_HOST.test(host)) return next();
    next(new HttpError(403, `host "${host.slice(0, 100)}" refused: without http.token rigcam answers only localhost / 127.0.0.1`, 'host'));
  };
}

/**
 * Mutating requests must be JSON: an HTML form or a no-cors fetch from another site cannot send
 * `Content-Type: application/json` without a CORS preflight, which rigcam never grants.
 */
export function requireJson(req: Request, _res: Response, next: NextFunction): void {
  if (/^application\/json\s*(;|$)/i.test(req.get('content-type') ?? '')) return next();
  next(new HttpError(415, 'body: send Content-Type: application/json (an empty object {} when there is nothing to say)', 'content-type'));
}

/**
 * The API answers the box's own page and non-browser clients only. A page on another site can still make a
 * browser send simple requests (an <img> of the preview holding a decoder slot, a link to a download, an
 * EventSource): browsers mark those `Sec-Fetch-Site: cross-site` (or `same-site` from another port of the box)
 * and send an `Origin` on every non-GET. Clients that send neither header (curl, scripts) are not browsers.
 */
export function sameOriginOnly(req: Request, _res: Response, next: NextFunction): void {
  const site = req.get('sec-fetch-site');
  if (site && site !== 'same-origin' && site !== 'none') {
    return next(new HttpError(403, `cross-site request refused (Sec-Fetch-Site: ${site.slice(0, 40)}): use the box's own page or a script`, 'sec-fetch-site'));
  }
  const origin = req.get('origin');
  if (origin !== undefined) {
    let host: string | null = null;
    try {
      host = new URL(origin).host;
    } catch {
      host = null;
    }
    if (host === null || host.toLowerCase() !== (req.get('host') ?? '').toLowerCase()) {
      return next(new HttpError(403, `origin "${origin.slice(0, 100)}" refused: only the box's own page may call the API`, 'origin'));
    }
  }
  next();
}
