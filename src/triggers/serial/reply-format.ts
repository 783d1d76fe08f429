import type { CommandResult } from '../../runtime/command-types.ts';
import type { TextVerb } from './command-line.ts';

/**
 * Answers are exactly one line each (the caller appends the configured line ending), so the other
 * side can pair every line it sent with one line back.
 */

const MAX_SUMMARY_CHARS = 200;
const MAX_REASON_CHARS = 200;

/** `ERR <reason>`, the reason flattened to one line. */
export function errLine(reason: string): string {
  return `ERR ${oneLine(reason, MAX_REASON_CHARS) || 'failed'}`;
}

/**
 * Answer to a text command: `OK <VERB> key=value ...`, or `ERR <code> <reason>` for a refusal of the box (the code
 * a machine can branch on: conflict, invalid_payload, disk_full...; the reason still follows `ERR ` as before).
 */
export function textReply(verb: TextVerb, result: CommandResult): string {
  if (!result.ok) {
    const reason = result.error ?? `${result.command} failed`;
    return errLine(result.code ? `${result.code} ${reason}` : reason);
  }
  const summary = summarizeData(result.data);
  return summary ? `OK ${verb} ${summary}` : `OK ${verb}`;
}

/** Answer to a JSON command: the result itself; JSON.stringify never emits a raw line break. */
export function jsonReply(result: CommandResult): string {
  return JSON.stringify(result);
}

/**
 * Compact `key=value` summary of a result's data: scalars as they are, arrays as their length,
 * nested objects one level deep (`recording.session=...`). Spaces in values become `_` so the
 * answer stays splittable on blanks; the whole is capped in length.
 */
export function summarizeData(data: Record<string, unknown> | undefined): string {
  if (!data) return '';
  const parts: string[] = [];
  const add = (key: string, value: unknown, depth: number): void => {
    if (value === null || value === undefined) return;
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
      parts.push(`${token(key)}=${token(String(value))}`);
    } else if (Array.isArray(value)) {
      parts.push(`${token(key)}=${value.length}`);
    } else if (typeof value === 'object' && depth === 0) {
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) add(`${key}.${k}`, v, depth + 1);
    }
  };
  for (const [k, v] of Object.entries(data)) add(k, v, 0);
  const line = parts.join(' ');
  return line.length > MAX_SUMMARY_CHARS ? `${line.slice(0, MAX_SUMMARY_CHARS - 3)}...` : line;
}

function token(s: string): string {
  return s.replace(/[\s\u0000-\u001f\u007f-\u009f]+/g, '_');
}

function oneLine(s: string, max: number): string {
  const flat = s.replace(/[\s\u0000-\u001f\u007f-\u009f]+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 3)}...` : flat;
}
