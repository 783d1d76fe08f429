import express, { type Request, type Response, type Router } from 'express';
import type { z } from 'zod';
import type { CommandResult } from '../runtime/command-types.ts';
import type { CameraRuntime } from '../runtime/camera-runtime.ts';
import { requireJson, requireToken } from './auth.ts';
import type { ApiContext } from './context.ts';
import { HTTP_STATUS_OF_CODE, HttpError, parsePart } from './http-error.ts';
import { cameraParams, commandBody, emptyBody, markerBody, noQuery, trialStartBody, trialStopBody } from './schemas.ts';
import { statusView } from './status-view.ts';

/**
 * A runtime answer as HTTP: 200 when done, else the status of the refusal's code (HTTP_STATUS_OF_CODE): 400 for
 * an invalid payload (with the field), 404 for an unknown camera, 409 when refused in the current state...
 */
function answer(res: Response, r: CommandResult): void {
  if (r.ok) {
    res.json(r);
    return;
  }
  const status = HTTP_STATUS_OF_CODE[r.code ?? 'internal'];
  if (r.code === 'invalid_payload') {
    res.status(status).json({ ...r, field: r.field ? `body.payload.${r.field}` : 'body.payload' });
    return;
  }
  res.status(status).json(r);
}

export function cameraView(c: ApiContext, rt: CameraRuntime): Record<string, unknown> {
  return {
    ...rt.describe(),
    state: rt.state,
    armed: rt.config.armed,
    recording: rt.recording,
    last_error: rt.lastError,
    capabilities: rt.capabilities,
    preview: c.hub.state(rt.id),
    urls: { preview: `/api/cameras/${rt.id}/preview.mjpeg`, snapshot: `/api/cameras/${rt.id}/snapshot.jpg` },
  };
}

/** Path and query are validated before the camera is looked up. */
export function cameraOr404(c: ApiContext, req: Request, query: z.ZodType = noQuery): CameraRuntime {
  const { id } = parsePart('params', cameraParams, req.params);
  parsePart('query', query, req.query);
  const rt = c.box.cameras.get(id);
  if (!rt) throw new HttpError(404, `no camera "${id}" (cameras: ${[...c.box.cameras.keys()].join(', ') || 'none'})`, 'params.id');
  return rt;
}

export function controlRoutes(c: ApiContext): Router {
  const r = express.Router();
  const auth = requireToken(c.config.http.token);
  const json = [auth, requireJson, express.json({ limit: '64kb', strict: true })];
  const body = (req: Request): unknown => req.body ?? {};
  // Triggers are timed at the request's arrival (set first thing in the app), not after parsing.
  const api = (res: Response): { source: 'api'; triggerMonoUs?: number } => ({ source: 'api', triggerMonoUs: res.locals.arrivalUs as number | undefined });

  r.get('/status', auth, async (req, res) => {
    parsePart('query', noQuery, req.query);
    res.json(await statusView(c));
  });

  r.get('/cameras', auth, (req, res) => {
    parsePart('query', noQuery, req.query);
    res.json({ cameras: [...c.box.cameras.values()].map((rt) => cameraView(c, rt)) });
  });

  r.get('/cameras/:id', auth, (req, res) => {
    res.json(cameraView(c, cameraOr404(c, req)));
  });

  r.post('/commands', ...json, async (req, res) => {
    const b = parsePart('body', commandBody, body(req));
    if (!c.box.commands.resolve(b.command)) throw new HttpError(400, `body.command: unknown command "${b.command.slice(0, 64)}"`, 'body.command');
    answer(res, await c.box.handleCommand(b.command, b.payload ?? {}, api(res), b.command_id));
  });

  r.post('/trials/start', ...json, async (req, res) => {
    const b = parsePart('body', trialStartBody, body(req));
    const payload: Record<string, unknown> = {};
    if (b.session !== undefined) payload.session_prefix = b.session;
    if (b.trial !== undefined) payload.trial_number = b.trial;
    if (b.label !== undefined) payload.trial_label = b.label;
    if (b.metadata !== undefined) payload.metadata = b.metadata;
    if (b.cameras !== undefined) payload.camera_ids = b.cameras;
    answer(res, await c.box.handleCommand('start_recording', payload, api(res)));
  });

  r.post('/trials/stop', ...json, async (req, res) => {
    const b = parsePart('body', trialStopBody, body(req));
    answer(res, await c.box.handleCommand('stop_recording', b.at_mono_us === undefined ? {} : { at_mono_us: b.at_mono_us }, api(res)));
  });

  r.post('/markers', ...json, async (req, res) => {
    const b = parsePart('body', markerBody, body(req));
    answer(res, await c.box.handleCommand('mark', { label: b.label }, api(res)));
  });

  return r;
}
