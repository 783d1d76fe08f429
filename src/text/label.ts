import { z } from 'zod';

/**
 * The one rule for human-written labels (trial labels, marker labels, GPIO marker names, session notes' titles),
 * whatever transport they came by: printable text only. Refused: C0/C1 control characters, Unicode bidi
 * controls (they reorder what a reader sees in a CSV or log: "Trojan source"), other invisible format characters
 * that change meaning, and lone surrogates (not encodable as UTF-8: the CSV and database would hold U+FFFD).
 */
// C0, DEL, C1 | bidi embeddings/overrides/isolates and marks | zero-width and word joiners, BOM, line/para seps
const FORBIDDEN = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u200b-\u200d\u2060\u2028\u2029\ufeff]/u;

// Without the u flag the regex sees UTF-16 code units, so an unpaired half of a surrogate pair is visible.
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Why a label is refused, or null when it is fine. */
export function labelProblem(s: string): string | null {
  if (LONE_SURROGATE.test(s)) return 'not valid Unicode text (lone surrogate)';
  const m = FORBIDDEN.exec(s);
  if (m) {
    const cp = m[0].codePointAt(0)!;
    return `contains an invisible or control character (U+${cp.toString(16).toUpperCase().padStart(4, '0')})`;
  }
  return null;
}

/** A zod schema for a label of at most `max` characters (code points). */
export function labelSchema(max = 200) {
  return z
    .string()
    // Cheap first (a code point is at most two UTF-16 units): a megabyte label is refused without scanning it.
    .max(max * 2, { message: `at most ${max} characters`, abort: true })
    .refine((s) => [...s].length <= max, `at most ${max} characters`)
    .superRefine((s, ctx) => {
      const why = labelProblem(s);
      if (why) ctx.addIssue({ code: 'custom', message: why });
    });
}
