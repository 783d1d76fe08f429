/**
 * Bytes in, lines out, each line stamped with the arrival time of its FIRST byte (the moment the
 * trigger was sent, as far as userland can see it), not the time the line ended. Pure: the caller
 * passes the arrival time of every chunk.
 *
 * - A line ends at \r, \n or \r\n (a \r\n split across two chunks still counts once).
 * - Lines that are empty or only blanks are skipped without an answer.
 * - A line longer than maxLineBytes yields ONE 'line too long' error as soon as the limit is passed;
 *   the rest of it, up to the next line end, is discarded. Memory stays bounded by maxLineBytes.
 * - A line holding invalid UTF-8 or control characters (other than tab) yields 'binary data'.
 */

export type LineErrorReason = 'line too long' | 'binary data';

export type LineEvent =
  | { kind: 'line'; text: string; firstByteMonoUs: number }
  | { kind: 'error'; reason: LineErrorReason; firstByteMonoUs: number };

const CR = 0x0d;
const LF = 0x0a;

// C0 controls except tab, DEL, and the C1 controls: never part of a typed or scripted command.
const CONTROL_CHARS = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/;

export class LineSplitter {
  private readonly buf: Buffer;
  private len = 0;
  private firstByteMonoUs: number | null = null;
  private overflowed = false;
  private afterCR = false;
  private readonly decoder = new TextDecoder('utf-8', { fatal: true });

  constructor(readonly maxLineBytes: number) {
    if (!Number.isInteger(maxLineBytes) || maxLineBytes < 1) throw new RangeError('maxLineBytes must be a positive integer');
    this.buf = Buffer.alloc(maxLineBytes);
  }

  /** Feed one chunk as it arrived; returns the events it completed, in order. */
  push(chunk: Uint8Array, arrivalMonoUs: number): LineEvent[] {
    const events: LineEvent[] = [];
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (b === LF && this.afterCR) {
        this.afterCR = false; // second half of \r\n
        continue;
      }
      this.afterCR = b === CR;
      if (b === CR || b === LF) {
        const ev = this.endLine();
        if (ev) events.push(ev);
        continue;
      }
      if (this.firstByteMonoUs === null) this.firstByteMonoUs = arrivalMonoUs;
      if (this.overflowed) continue;
      if (this.len === this.maxLineBytes) {
        this.overflowed = true;
        events.push({ kind: 'error', reason: 'line too long', firstByteMonoUs: this.firstByteMonoUs });
        continue;
      }
      this.buf[this.len++] = b;
    }
    return events;
  }

  /** Forget a partial line (e.g. after the port was reopened). */
  reset(): void {
    this.len = 0;
    this.firstByteMonoUs = null;
    this.overflowed = false;
    this.afterCR = false;
  }

  /** Bytes of the current, unfinished line held in memory. */
  get pendingBytes(): number {
    return this.len;
  }

  private endLine(): LineEvent | null {
    const firstByteMonoUs = this.firstByteMonoUs;
    const overflowed = this.overflowed;
    const bytes = this.buf.subarray(0, this.len);
    this.len = 0;
    this.firstByteMonoUs = null;
    this.overflowed = false;
    if (overflowed || firstByteMonoUs === null) return null;

    let text: string;
    try {
      text = this.decoder.decode(bytes);
    } catch {
      return { kind: 'error', reason: 'binary data', firstByteMonoUs };
    }
    if (CONTROL_CHARS.test(text)) return { kind: 'error', reason: 'binary data', firstByteMonoUs };
    if (text.trim() === '') return null;
    return { kind: 'line', text, firstByteMonoUs };
  }
}
