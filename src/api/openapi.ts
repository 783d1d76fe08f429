import { z } from 'zod';
import { ERROR_CODES } from '../runtime/errors.ts';
import { seriesQuery } from './routes-quality.ts';
import { checksumsQuery, manifestQuery, offloadedBody } from './routes-offload.ts';
import { commandBody, emptyBody, markerBody, trialStartBody, trialStopBody } from './schemas.ts';

type Json = Record<string, unknown>;

function schema(s: z.ZodType): Json {
  const { $schema: _drop, ...rest } = z.toJSONSchema(s, { io: 'input', unrepresentable: 'any' }) as Json;
  void _drop;
  return rest;
}

const errorSchema = { $ref: '#/components/schemas/Error' };
const err = (description: string): Json => ({ description, content: { 'application/json': { schema: errorSchema } } });
const ok = (description: string, s: Json = { type: 'object' }): Json => ({ description, content: { 'application/json': { schema: s } } });
const commandResult = { $ref: '#/components/schemas/CommandResult' };

const idParam = (what: string): Json => ({ name: 'id', in: 'path', required: true, description: `${what} id`, schema: { type: 'string', pattern: '^[1-9][0-9]{0,9}$' } });
const cameraParam = { name: 'id', in: 'path', required: true, description: 'camera id', schema: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$' } };
const tokenParam = { name: 'token', in: 'query', required: false, description: 'the API token, for clients that cannot send headers (EventSource, <img>, links)', schema: { type: 'string' } };

/** Query parameters of a zod object, for routes that take a query. */
function queryParams(q: z.ZodType): Json[] {
  const js = schema(q) as { properties?: Record<string, Json>; required?: string[] };
  return Object.entries(js.properties ?? {}).map(([name, sch]) => ({ name, in: 'query', required: js.required?.includes(name) ?? false, description: sch.description, schema: { type: 'string' } }));
}

const secured = { security: [{ bearer: [] }] };
const securedLink = { security: [{ bearer: [] }, { queryToken: [] }] };
const denied = { '401': err('token missing or wrong (only when http.token is configured)') };

function post(summary: string, body: z.ZodType, description: string): Json {
  return {
    post: {
      summary,
      description,
      ...secured,
      requestBody: { required: true, content: { 'application/json': { schema: schema(body) } } },
      responses: {
        '200': ok('done', commandResult),
        '400': err('invalid body: `field` names the offending input; nothing changed'),
        ...denied,
        '404': ok('no such camera (`code`: not_found); nothing changed', commandResult),
        '409': ok('refused in the current state (`code`: conflict — already recording, not recording — or busy: camera not ready); nothing changed', commandResult),
        '415': err('the body is not Content-Type: application/json'),
        '500': ok('a fault of rigcam itself (`code`: internal)', commandResult),
        '503': ok('a camera or tool failed (`code`: unavailable), or the service is stopping (shutting_down)', commandResult),
        '507': ok('not enough free disk to start (`code`: disk_full); nothing changed', commandResult),
      },
    },
  };
}

/** The OpenAPI 3.1 description of the rigcam HTTP API, served at /api/openapi.json. */
export function openApiDocument(version: string): Json {
  return {
    openapi: '3.1.0',
    info: {
      title: 'rigcam',
      version,
      description:
        'Local API of a rigcam camera box. When http.token is configured every route except /api/health and this document needs ' +
        '`Authorization: Bearer <token>`; the event stream, preview, snapshot and downloads also accept `?token=<token>` ' +
        '(browsers cannot set headers on EventSource, <img> or links). Without a token rigcam listens on loopback only and ' +
        'answers only requests addressed to localhost. Mutating routes take JSON only. Every error is `{ok: false, error, field?}`.',
    },
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer' },
        queryToken: { type: 'apiKey', in: 'query', name: 'token' },
      },
      schemas: {
        Error: { type: 'object', required: ['ok', 'error'], properties: { ok: { const: false }, error: { type: 'string' }, field: { type: 'string', description: 'the offending input, e.g. body.session, params.id, query.format, range' } } },
        CommandResult: {
          type: 'object',
          required: ['ok', 'command'],
          properties: {
            ok: { type: 'boolean' },
            command: { type: 'string' },
            data: { type: 'object' },
            error: { type: 'string' },
            code: { enum: [...ERROR_CODES], description: 'why a command was refused; decides the HTTP status' },
            recoverable: { type: 'boolean' },
            field: { type: 'string' },
          },
        },
        StatusMessage: {
          type: 'object',
          properties: {
            type: { const: 'status' },
            status: { type: 'string', description: 'ready, device_ready, recording_started, recording_stopped, marker, telemetry, error, ...' },
            timestamp: { type: 'number', description: 'unix seconds' },
            mono_us: { type: 'integer', description: 'CLOCK_MONOTONIC µs, the clock of the frames' },
            camera_id: { type: ['string', 'null'] },
            command_id: { type: ['string', 'null'] },
            data: { type: 'object' },
          },
        },
      },
    },
    paths: {
      '/api/health': { get: { summary: 'liveness (no token needed)', responses: { '200': ok('alive; auth_required says whether a token is needed; disk_level and recording_allowed are the disk guard\'s state, reason why a trial would be refused; offload_stale (with offload_warning) that no backup was confirmed for offload.stale_after_hours while recordings wait', { type: 'object', properties: { ok: { const: true }, auth_required: { type: 'boolean' }, disk_level: { enum: ['ok', 'warn', 'stop', 'unknown'] }, recording_allowed: { type: 'boolean' }, reason: { type: 'string' }, offload_stale: { type: 'boolean' }, offload_warning: { type: 'string' } } }) } } },
      '/api/openapi.json': { get: { summary: 'this document (no token needed)', responses: { '200': ok('OpenAPI 3.1') } } },
      '/api/status': {
        get: {
          summary: 'box status',
          description: 'recording, session, trial, and per camera: state, capture_fps (measured), frames_recorded, frames_dropped, preview cost; disk: free_bytes, total_bytes, minutes_left, level',
          ...secured,
          responses: { '200': ok('status'), ...denied },
        },
      },
      '/api/cameras': { get: { summary: 'cameras with their probed capabilities (modes, controls)', ...secured, responses: { '200': ok('cameras'), ...denied } } },
      '/api/cameras/{id}': { get: { summary: 'one camera', ...secured, parameters: [cameraParam], responses: { '200': ok('camera'), '400': err('bad id'), ...denied, '404': err('no such camera') } } },
      '/api/cameras/{id}/preview.mjpeg': {
        get: {
          summary: 'live preview (MJPEG, one image per keyframe)',
          description: 'multipart/x-mixed-replace JPEG stream for an <img>. One decoder per camera runs while at least one viewer is connected.',
          ...securedLink,
          parameters: [cameraParam, tokenParam],
          responses: { '200': { description: 'MJPEG stream', content: { 'multipart/x-mixed-replace': {} } }, '400': err('bad id or query'), ...denied, '404': err('no such camera'), '503': err('too many viewers') },
        },
      },
      '/api/cameras/{id}/snapshot.jpg': {
        get: { summary: 'one JPEG of the newest keyframe', ...securedLink, parameters: [cameraParam, tokenParam], responses: { '200': { description: 'JPEG', content: { 'image/jpeg': {} } }, ...denied, '404': err('no such camera'), '503': err('no video yet') } },
      },
      '/api/commands': post(
        'run a command of the runtime protocol',
        commandBody,
        'The transport-neutral command entry point (the same as serial, GPIO and the module host use). 400 when the command is unknown or the runtime finds the payload invalid.',
      ),
      '/api/trials/start': post('start a trial (every armed camera)', trialStartBody, 'start_recording with session_prefix, trial_number, trial_label, metadata, camera_ids.'),
      '/api/trials/stop': post('stop the trial', trialStopBody, 'stop_recording: files flushed and marked complete. Send {}, or {"at_mono_us": N}: the instant the stop takes effect on CLOCK_MONOTONIC µs (not in the future, not older than recording.stop_hold_ms); no frame captured at or after it is kept.'),
      '/api/markers': post('mark an instant', markerBody, 'A marker event at the arrival time of the request, on the clock of the frames; it shows in frames.csv.'),
      '/api/events': {
        get: {
          summary: 'server-sent events: every status and telemetry message',
          description: 'text/event-stream; each `data:` line is a StatusMessage as JSON; a `: keep-alive` comment every 15 s.',
          ...securedLink,
          parameters: [tokenParam],
          responses: { '200': { description: 'event stream', content: { 'text/event-stream': { schema: { $ref: '#/components/schemas/StatusMessage' } } } }, ...denied },
        },
      },
      '/api/sessions': { get: { summary: 'sessions, newest first, with their trial counts', ...secured, responses: { '200': ok('sessions'), ...denied } } },
      '/api/sessions/{id}': {
        get: {
          summary: 'a session with a page of its trials (markers, recordings): trials_total, next_after_trial',
          ...secured,
          parameters: [
            idParam('session'),
            { name: 'after_trial', in: 'query', required: false, schema: { type: 'integer', minimum: 0 }, description: 'only trials numbered above this' },
            { name: 'limit', in: 'query', required: false, schema: { type: 'integer', minimum: 1, maximum: 1000, default: 50 } },
          ], responses: { '200': ok('session'), '400': err('bad id or query'), ...denied, '404': err('no such session') },
        },
      },
      '/api/sync/edges': {
        get: {
          summary: 'sync pulse edges in and out, oldest first, a page after an edge id',
          description:
            'Each edge: id, run_id, host, boot_id, direction (in: a sync input, kernel time; out: the train this box emits, set time), line, active (the pulse onset), mono_us (CLOCK_MONOTONIC of that boot), clock, uncertainty_us, seq (pulse number out), session_id, trial_id. next_since is the `since` of the next page (null at the end).',
          ...secured,
          parameters: [
            { name: 'since', in: 'query', required: false, schema: { type: 'integer', minimum: 0 }, description: 'only edges with an id above this' },
            { name: 'limit', in: 'query', required: false, schema: { type: 'integer', minimum: 1, maximum: 10000, default: 1000 } },
            { name: 'direction', in: 'query', required: false, schema: { enum: ['in', 'out'] } },
            { name: 'line', in: 'query', required: false, schema: { type: 'integer', minimum: 0, maximum: 511 } },
          ],
          responses: { '200': ok('edges, next_since'), '400': err('bad query'), ...denied },
        },
      },
      '/api/recordings/{id}': {
        get: { summary: 'a recording, its trial and session', ...secured, parameters: [idParam('recording')], responses: { '200': ok('recording'), '400': err('bad id'), ...denied, '404': err('no such recording') } },
      },
      '/api/recordings/{id}/video': {
        get: {
          summary: 'download the video (HTTP Range supported)',
          description: 'The .mp4 when one exists and format=ts is not asked, else the .ts. One byte range per request.',
          ...securedLink,
          parameters: [idParam('recording'), { name: 'format', in: 'query', required: false, schema: { type: 'string', enum: ['ts', 'mp4'] } }, tokenParam, { name: 'Range', in: 'header', required: false, schema: { type: 'string', example: 'bytes=0-1023' } }],
          responses: {
            '200': { description: 'the whole file', content: { 'video/mp4': {}, 'video/mp2t': {} } },
            '206': { description: 'the requested range' },
            '400': err('bad id or query'),
            ...denied,
            '403': err('the stored path leaves the recordings root'),
            '404': err('no such recording, or its file is not on the box'),
            '416': err('malformed, multiple or unsatisfiable range'),
          },
        },
      },
      '/api/recordings/{id}/series': {
        get: {
          summary: 'frame timing decimated for a plot: min/max interval and missing frames per bucket',
          description:
            '`width` buckets of consecutive frames over the recording (or the frames captured in from_us..to_us): per bucket its first capture time `t`, frames, ' +
            'min and max interval (ms; pause and restart gaps left out), missing frames and keyframes, so a single dropped frame is never averaged away. ' +
            'Also the exact drops, gaps (pause, restart, discontinuity), trigger and stop instants, pre-roll, markers (with the frame each is on) and segments. ' +
            'Times are seconds from the trigger (origin_us on the capture clock).',
          ...secured,
          parameters: [idParam('recording'), ...queryParams(seriesQuery)],
          responses: { '200': ok('series'), '400': err('bad id or query'), ...denied, '404': err('no such recording') },
        },
      },
      '/api/recordings/{id}/summary': {
        get: {
          summary: 'quality summary of a recording',
          description:
            'frames, dropped (count, %), interval p50/p99/max, effective fps, clock, pre-roll, segments and gaps, and whether the database rows, ' +
            'the CSV sidecar, the recording row and the video file size agree (`agreement.checks`). The video is not decoded.',
          ...secured,
          parameters: [idParam('recording')],
          responses: { '200': ok('summary'), '400': err('bad id'), ...denied, '404': err('no such recording') },
        },
      },
      '/api/sessions/{id}/quality': {
        get: {
          summary: 'one row per trial: duration, frames, drops (count, %), marker count, recordings; paged like the session: trials_total, next_after_trial',
          ...secured,
          parameters: [
            idParam('session'),
            { name: 'after_trial', in: 'query', required: false, schema: { type: 'integer', minimum: 0 }, description: 'only trials numbered above this' },
            { name: 'limit', in: 'query', required: false, schema: { type: 'integer', minimum: 1, maximum: 1000, default: 50 } },
          ],
          responses: { '200': ok('trials'), '400': err('bad id or query'), ...denied, '404': err('no such session') },
        },
      },
      '/api/recordings/{id}/frames.csv': {
        get: {
          summary: 'frame timing from SQLite, with markers',
          description:
            'The columns of the sidecar CSV, plus `markers`: the labels (joined with ";") of the trial\'s markers captured after the previous frame ' +
            'and at or before this frame. Markers before the first frame or after the last are on lines of their own (frame columns empty) at the start or end.',
          ...securedLink,
          parameters: [idParam('recording'), tokenParam],
          responses: { '200': { description: 'CSV', content: { 'text/csv': {} } }, '400': err('bad id'), ...denied, '404': err('no such recording') },
        },
      },
      '/api/recordings/{id}/checksums': {
        get: {
          summary: 'the SHA-256 of the recording\'s files (video, CSV, sidecar, .mp4), computed when it closed; ?recheck=true hashes the files again and compares',
          ...secured,
          parameters: [idParam('recording'), ...queryParams(checksumsQuery)],
          responses: { '200': ok('checksums (with ok, problems and each file\'s actual hash when rechecked)'), '400': err('bad id or query'), ...denied, '404': err('no such recording') },
        },
      },
      '/api/recordings/{id}/offloaded': {
        post: {
          summary: 'mark a recording offloaded, only when the copy\'s SHA-256 of every file matches the box\'s',
          description:
            'Send the hashes computed over YOUR copy, by path as the manifest names them. Every file of the recording must be confirmed and match; ' +
            'otherwise 409 with `mismatches` and nothing is marked. A verified offload is what `disk.retention.require_verified_offload` deletes.',
          ...secured,
          parameters: [idParam('recording')],
          requestBody: { required: true, content: { 'application/json': { schema: schema(offloadedBody) } } },
          responses: {
            '200': ok('marked: offloaded_at, offload_verified_at'),
            '400': err('bad id or body (a path that is not a file of the recording, a malformed hash)'),
            ...denied,
            '404': err('no such recording'),
            '409': err('a hash differs or is missing (`mismatches`), or the recording is still recording, deleted or not hashed yet; nothing changed'),
            '415': err('the body is not Content-Type: application/json'),
          },
        },
      },
      '/api/offload/manifest': {
        get: {
          summary: 'finished recordings not yet offloaded, with their files\' relative paths, sizes and SHA-256 (what a pull offload fetches)',
          description: '`ready: false` recordings are not hashed yet (sha256 null); the tsv format lists ready recordings only.',
          ...securedLink,
          parameters: queryParams(manifestQuery),
          responses: { '200': ok('manifest'), '400': err('bad query'), ...denied },
        },
      },
      '/api/sessions/{id}/export': {
        get: {
          summary: 'a tar of the session folder with a fresh session.json (trials, labels, metadata, markers, sidecar summaries, checksums)',
          description: 'Files of recordings still being written are left out. Names are `<session>/<file>`; long or non-ASCII names use pax headers.',
          ...securedLink,
          parameters: [idParam('session'), tokenParam],
          responses: { '200': { description: 'tar', content: { 'application/x-tar': {} } }, '400': err('bad id'), ...denied, '404': err('no such session') },
        },
      },
    },
  };
}
