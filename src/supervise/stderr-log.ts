import type { Logger } from '../log/logger.ts';

export interface StderrLogLimit {
  /** At most this many lines logged per window... */
  lines: number;
  /** ...of this many milliseconds; the rest are counted and summarised once per window. */
  perMs: number;
}

export const DEFAULT_STDERR_LIMIT: StderrLogLimit = { lines: 20, perMs: 10_000 };

/**
 * A child's stderr into the log at warn, rate-limited: a process that spams (a camera printing a warning per
 * frame) costs at most `lines` log lines per window, plus one "suppressed K lines" summary at the window's end.
 */
export class StderrLog {
  private windowStart = 0;
  private logged = 0;
  private suppressed = 0;
  private lastSuppressed = '';
  private summaryTimer: NodeJS.Timeout | null = null;
  private readonly limit: StderrLogLimit;

  constructor(
    private readonly log: Logger,
    private readonly msg: string,
    private readonly fields: Record<string, unknown>,
    limit: Partial<StderrLogLimit> = {},
  ) {
    this.limit = { ...DEFAULT_STDERR_LIMIT, ...limit };
  }

  line(text: string, now = Date.now()): void {
    if (now - this.windowStart >= this.limit.perMs) {
      this.flush();
      this.windowStart = now;
      this.logged = 0;
    }
    if (this.logged < this.limit.lines) {
      this.logged++;
      this.log.warn({ ...this.fields, stderr: text }, this.msg);
      return;
    }
    this.suppressed++;
    this.lastSuppressed = text;
    if (!this.summaryTimer) {
      this.summaryTimer = setTimeout(() => this.flush(), Math.max(0, this.windowStart + this.limit.perMs - now));
      this.summaryTimer.unref();
    }
  }

  /** Log the summary of what this window suppressed, if anything (also at the child's exit). */
  flush(): void {
    if (this.summaryTimer) clearTimeout(this.summaryTimer);
    this.summaryTimer = null;
    if (this.suppressed === 0) return;
    this.log.warn({ ...this.fields, suppressed: this.suppressed, last: this.lastSuppressed }, `${this.msg}: ${this.suppressed} more lines suppressed`);
    this.suppressed = 0;
    this.lastSuppressed = '';
  }
}
