import { z } from 'zod';

/**
 * One received line → what to do with it. Pure. Two forms share the port:
 * - text: `START [session] [trial]`, `STOP`, `PAUSE`, `RESUME`, `MARK <label>`, `STATUS`, `PING`
 *   (verbs case-insensitive, arguments separated by blanks);
 * - JSON: `{"command": "...", "payload": {...}}`, the seed's command protocol, recognised by a
 *   leading `{`.
 * Arguments are checked here so a bad line never reaches the command handler.
 */

export type TextVerb = 'START' | 'STOP' | 'PAUSE' | 'RESUME' | 'MARK' | 'STATUS';

export type SerialRequest =
  | { kind: 'ping' }
  | { kind: 'invalid'; reason: string }
  | { kind: 'command'; format: 'text'; verb: TextVerb; command: string; payload: Record<string, unknown> }
  | { kind: 'command'; format: 'json'; command: string; payload: Record<string, unknown> };

/** Session names end up in directory and file names: a conservative charset, no leading dot. */
const SESSION_RE = /^[A-Za-z0-9._-]{1,64}$/;
/** Positive integer without sign or leading zero, small enough to be exact and to fit a file name. */
const TRIAL_RE = /^[1-9][0-9]{0,8}$/;
export const MAX_LABEL_CHARS = 200;

const NO_ARG_COMMANDS: Record<Exclude<TextVerb, 'START' | 'MARK'>, string> = {
  STOP: 'stop_recording',
  PAUSE: 'pause_recording',
  RESUME: 'resume_recording',
  STATUS: 'get_status',
};

export const jsonLineSchema = z.strictObject({
  command: z
    .string()
    .min(1)
    .max(64)
    .regex(/^[A-Za-z][A-Za-z0-9_.-]*$/, 'command must be a plain name'),
  payload: z.record(z.string(), z.unknown()).optional(),
});

export function parseSerialLine(line: string): SerialRequest {
  const text = line.trim();
  if (text.startsWith('{')) return parseJsonLine(text);

  const [word = '', ...args] = text.split(/[ \t]+/);
  const verb = word.toUpperCase();
  switch (verb) {
    case 'PING':
      return args.length === 0 ? { kind: 'ping' } : noArgs(verb);
    case 'START':
      return parseStart(args);
    case 'MARK': {
      const label = text.slice(word.length).trim();
      if (label === '') return { kind: 'invalid', reason: 'MARK needs a label' };
      if ([...label].length > MAX_LABEL_CHARS) return { kind: 'invalid', reason: `label longer than ${MAX_LABEL_CHARS} characters` };
      return { kind: 'command', format: 'text', verb: 'MARK', command: 'mark', payload: { label } };
    }
    case 'STOP':
    case 'PAUSE':
    case 'RESUME':
    case 'STATUS':
      if (args.length > 0) return noArgs(verb);
      return { kind: 'command', format: 'text', verb, command: NO_ARG_COMMANDS[verb], payload: {} };
    default:
      return { kind: 'invalid', reason: `unknown command ${printable(word)}` };
  }
}

function parseStart(args: string[]): SerialRequest {
  if (args.length > 2) return { kind: 'invalid', reason: 'usage: START [session] [trial]' };
  const payload: Record<string, unknown> = {};
  const [session, trial] = args;
  if (session !== undefined) {
    if (!SESSION_RE.test(session) || session.startsWith('.')) {
      return { kind: 'invalid', reason: 'bad session name (1-64 of A-Z a-z 0-9 . _ -, not starting with .)' };
    }
    payload.session_prefix = session;
  }
  if (trial !== undefined) {
    if (!TRIAL_RE.test(trial)) return { kind: 'invalid', reason: 'bad trial number (positive integer)' };
    payload.trial_number = Number(trial);
  }
  return { kind: 'command', format: 'text', verb: 'START', command: 'start_recording', payload };
}

function parseJsonLine(text: string): SerialRequest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { kind: 'invalid', reason: 'invalid JSON' };
  }
  const parsed = jsonLineSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
    return { kind: 'invalid', reason: `bad JSON command: ${where}${issue?.message ?? 'invalid'}` };
  }
  return { kind: 'command', format: 'json', command: parsed.data.command, payload: parsed.data.payload ?? {} };
}

function noArgs(verb: string): SerialRequest {
  return { kind: 'invalid', reason: `${verb} takes no arguments` };
}

/** Echo user input in an answer without letting it grow the line much. */
function printable(s: string): string {
  return s.length > 32 ? `${s.slice(0, 32)}...` : s;
}
