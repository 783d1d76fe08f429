import { z } from 'zod';
import { instantSchema, markSchema, startRecordingSchema } from '../runtime/commands.ts';

/**
 * Every body, query and path parameter of the API. Objects are strict: an unknown field is a 400 naming it,
 * never silently ignored (a misspelt "sesion" must not start a trial in a default session).
 */

const rec = startRecordingSchema.shape;

export const idParams = z.strictObject({
  id: z.string().regex(/^[1-9][0-9]{0,9}$/, 'must be a positive integer id').transform(Number),
});

export const cameraParams = z.strictObject({
  id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$/, 'camera ids use 1-32 letters, digits, "-" or "_"'),
});

const token = z.string().max(512).optional();
export const noQuery = z.strictObject({});
/** GET routes a browser element opens without headers also take ?token= */
export const tokenQuery = z.strictObject({ token });
export const videoQuery = z.strictObject({
  format: z.enum(['ts', 'mp4']).optional().describe('ts: the MPEG-TS as recorded; mp4: the remuxed file (404 when none). Default: the .mp4 when one exists, else the .ts'),
  token,
});

const intParam = (max: number) => z.string().regex(/^[0-9]{1,10}$/, 'a non-negative integer').transform(Number).pipe(z.number().int().min(0).max(max));
export const sessionQuery = z.strictObject({
  after_trial: intParam(1e9).optional().describe('only trials numbered above this (the page asks for what is new)'),
  limit: intParam(1000).pipe(z.number().min(1)).optional().describe('at most this many trials (default 50)'),
});

export const syncEdgesQuery = z.strictObject({
  since: intParam(1e15).optional().describe('only edges with an id above this (the previous page\'s next_since); default 0'),
  limit: intParam(10_000).pipe(z.number().min(1)).optional().describe('at most this many edges (default 1000)'),
  direction: z.enum(['in', 'out']).optional().describe('in: sync inputs (kernel times); out: the train this box emits'),
  line: intParam(511).optional().describe('only this GPIO line'),
});

export const commandBody = z.strictObject({
  command: z.string().min(1).max(64).describe('a command of the runtime protocol (start_recording, stop_recording, mark, control_change, ...) or an alias (record, stop, marker, ...)'),
  payload: z.record(z.string(), z.unknown()).optional().describe("the command's payload, validated by the runtime"),
  command_id: z.string().max(100).optional().describe('echoed in the status events the command causes'),
});

export const trialStartBody = z.strictObject({
  session: rec.session_prefix.describe('session name; default: the open session, else <prefix>-<date>-<time>'),
  trial: rec.trial_number.describe('trial number; default: the next in the session'),
  label: rec.trial_label,
  metadata: rec.metadata,
  cameras: rec.camera_ids.describe('cameras to record; default: every armed, ready camera'),
});

export const emptyBody = z.strictObject({});

/** Stop: optionally the instant it takes effect (CLOCK_MONOTONIC µs, not in the future, within the stop hold). */
export const trialStopBody = z.strictObject({ at_mono_us: instantSchema.shape.at_mono_us });

export const markerBody = z.strictObject({ label: markSchema.shape.label });
