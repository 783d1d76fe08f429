/** What to send for a `Range` header against a file of `size` bytes. */
export type RangeAnswer =
  | { kind: 'full' }
  | { kind: 'partial'; start: number; end: number }
  | { kind: 'unsatisfiable'; reason: string };

const SINGLE = /^bytes=(\d*)-(\d*)$/;

/**
 * One byte range (RFC 9110 §14.1.2): `bytes=a-b`, `bytes=a-`, `bytes=-n`. Video players and download managers ask
 * for one range at a time; several ranges, other units and malformed values are refused (416) rather than
 * silently answered with the whole file, so a client bug shows.
 */
export function parseRange(header: string | undefined, size: number): RangeAnswer {
  if (header === undefined) return { kind: 'full' };
  const h = header.trim();
  if (h.includes(',')) return { kind: 'unsatisfiable', reason: 'multiple ranges are not supported' };
  const m = SINGLE.exec(h);
  if (!m) return { kind: 'unsatisfiable', reason: `malformed range "${h.slice(0, 60)}" (expected bytes=start-end)` };
  const [a, b] = [m[1]!, m[2]!];
  if (a === '' && b === '') return { kind: 'unsatisfiable', reason: 'empty range' };
  if (a.length > 15 || b.length > 15) return { kind: 'unsatisfiable', reason: 'range value too large' };
  if (size === 0) return { kind: 'unsatisfiable', reason: 'the file is empty' };
  if (a === '') {
    const n = Number(b);
    if (n === 0) return { kind: 'unsatisfiable', reason: 'zero-length suffix range' };
    return { kind: 'partial', start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(a);
  if (start >= size) return { kind: 'unsatisfiable', reason: `range starts at ${start}, beyond the ${size}-byte file` };
  if (b === '') return { kind: 'partial', start, end: size - 1 };
  const end = Number(b);
  if (end < start) return { kind: 'unsatisfiable', reason: `range end ${end} is before its start ${start}` };
  return { kind: 'partial', start, end: Math.min(end, size - 1) };
}
