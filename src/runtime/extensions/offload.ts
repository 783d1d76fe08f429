import { hostname } from 'node:os';
import type { Logger } from '../../log/logger.ts';
import type { OffloadConfig } from '../../offload/config.ts';
import { confirmOffload } from '../../offload/confirm.ts';
import type { OffloadRecordingView, OffloadStatus } from '../../offload/status.ts';
import { makeTransport, type OffloadTransport } from '../../offload/targets.ts';
import { lackingChecksums, underRoot } from '../../storage/checksums.ts';
import type { OffloadSizedRow, RecordingRow, Store } from '../../storage/store.ts';
import { Backoff } from '../../supervise/backoff.ts';
import { ChildSupervisor, type ChildExit } from '../../supervise/child-supervisor.ts';
import type { EventBus } from '../event-bus.ts';
import type { StatusMessage } from '../status.ts';
import type { Extension } from './extension.ts';

export interface OffloadExtensionOptions {
  bus: EventBus;
  store: Store;
  root: string;
  log: Logger;
  config: OffloadConfig;
  /** Wall clock in ms (injectable: the stale warning is tested without waiting a day). */
  now?: () => number;
  /** Environment of the copy and hash commands (PATH). */
  env?: NodeJS.ProcessEnv;
}

type Outcome = 'verified' | 'failed' | 'interrupted';

/** How often the stale-backup warning is re-evaluated without anything happening. */
const STALE_CHECK_MS = 60_000;
const RECENT_VERIFIED = 10;

/**
 * Offload state of the box, and push offload when `offload.target` is set. Push: after each trial, while no trial
 * records, the finished recordings not yet offloaded are copied one file at a time (ionice idle class, nice,
 * bandwidth limit); a trial starting stops the copy at once (the SD card belongs to the recording) and it resumes
 * when the box is idle again (rsync appends to the partial copy). A recording counts as offloaded only once the
 * REMOTE SHA-256 of each of its files equals the one stored at the source (confirmOffload, as for a pull); a copy
 * that does not match is removed on the remote and sent again after a back-off. Pull or push, a backup that has
 * not succeeded for `stale_after_hours` while recordings wait raises a warning.
 */
export class OffloadExtension implements Extension {
  readonly name = 'offload';
  private readonly transport: OffloadTransport | null;
  private readonly now: () => number;
  private readonly backoff: Backoff;
  private recording = false;
  private stopped = true;
  private loop: Promise<void> | null = null;
  private again = false;
  private copy: ChildSupervisor | null = null;
  private copyingId: number | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private staleTimer: NodeJS.Timeout | null = null;
  private readonly failed = new Map<number, { error: string; retryAt: number }>();
  private readonly sent = new Map<number, number>();
  private readonly recent: number[] = [];
  private lastSuccessMs: number | null = null;
  private lastError: OffloadStatus['last_error'] = null;
  private warned = false;
  private readonly onRecording = (on: boolean): void => {
    this.recording = on;
    if (on) void this.copy?.stop(2000); // at once: the recording owns the SD card
    else this.kick();
  };
  private readonly onTrialStopped = (): void => this.kick();
  private readonly onStatus = (m: StatusMessage): void => {
    if (m.status === 'checksums') this.kick();
  };

  constructor(private readonly o: OffloadExtensionOptions) {
    this.now = o.now ?? Date.now;
    const box = o.config.box_name ?? (hostname().replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '') || 'rigcam');
    this.transport = o.config.target ? makeTransport(o.config.target, o.config, box, o.log, o.env) : null;
    this.backoff = new Backoff({ initialMs: o.config.retry_initial_ms, maxMs: o.config.retry_max_ms, healthyAfterMs: Number.MAX_SAFE_INTEGER, jitter: 0.2 });
  }

  start(): void {
    this.stopped = false;
    this.o.bus.on('recording', this.onRecording);
    this.o.bus.on('trial_stopped', this.onTrialStopped);
    this.o.bus.on('status', this.onStatus);
    this.staleTimer = setInterval(() => this.checkStale(), STALE_CHECK_MS);
    this.staleTimer.unref();
    this.checkStale();
    this.kick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.o.bus.off('recording', this.onRecording);
    this.o.bus.off('trial_stopped', this.onTrialStopped);
    this.o.bus.off('status', this.onStatus);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.staleTimer) clearInterval(this.staleTimer);
    await this.copy?.stop(2000);
    await this.loop;
  }

  /** A pull confirmed (error null) or refused a copy: the same last success / last error as a push. */
  noteOutcome(recordingId: number, error: string | null): void {
    if (error === null) this.succeeded(recordingId);
    else this.fail(recordingId, error, false);
    this.checkStale();
  }

  /** Start the push when there is something to do and the box is idle; never two at once. */
  kick(): void {
    if (!this.transport || this.stopped || this.recording) return;
    if (this.loop) {
      this.again = true;
      return;
    }
    this.loop = this.drain()
      .catch((err: unknown) => this.o.log.error({ err: (err as Error).message }, 'offload failed'))
      .finally(() => {
        this.loop = null;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  private async drain(): Promise<void> {
    try {
      await this.drainOnce();
    } finally {
      await this.transport?.close();
    }
  }

  private async drainOnce(): Promise<void> {
    for (;;) {
      if (this.stopped || this.recording) return;
      const now = this.now();
      const { next, retryAt } = this.nextToOffload(now);
      if (!next) {
        if (retryAt !== null) this.scheduleRetry(retryAt - now);
        return;
      }
      await this.transport!.open();
      const outcome = await this.offload(next);
      if (outcome === 'interrupted') return; // resumed when the trial ends
    }
  }

  private scheduleRetry(ms: number): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.kick();
    }, Math.max(1, ms));
  }

  /** Copy each file of one recording, then check every remote copy; mark only when all match. */
  private async offload(rec: RecordingRow): Promise<Outcome> {
    const t = this.transport!;
    const sums = this.o.store.checksumsOf(rec.id);
    this.copyingId = rec.id;
    this.sent.delete(rec.id);
    this.report(rec.id, 'copying');
    try {
      for (const f of sums) {
        const local = underRoot(this.o.root, f.path);
        if (!local) return this.fail(rec.id, `${f.path} is outside the recordings root`);
        const exit = await this.runCopy(t, rec.id, local, f.path);
        if (this.recording || this.stopped) {
          this.o.log.info({ recording: rec.id, file: f.path }, 'offload paused: a trial started (resumed when idle)');
          this.copyingId = null;
          this.report(rec.id, 'interrupted');
          return 'interrupted';
        }
        if (exit.code !== 0) return this.fail(rec.id, `copy of ${f.path} failed: ${exit.message.replace(/^ionice\b/, t.tool)}`);
      }
      const copy: Record<string, string> = {};
      const bad: string[] = [];
      const remoteSums = await t.remoteSha256(sums.map((f) => ({ rel: f.path, bytes: f.bytes })));
      for (const f of sums) {
        const remote = remoteSums.get(f.path) ?? null;
        if (remote === null) bad.push(`${f.path}: not on the remote after the copy`);
        else {
          copy[f.path] = remote;
          if (remote !== f.sha256) {
            bad.push(`${f.path}: remote copy has ${remote}, the box has ${f.sha256}`);
            await t.removeRemote(f.path); // sent again whole next time (an append would keep the bad bytes)
          }
        }
      }
      if (bad.length) return this.fail(rec.id, `copy not verified: ${bad.join('; ')}`);
      const r = await confirmOffload(this.o.store, rec.id, copy);
      if (!r.ok) return this.fail(rec.id, r.error);
      this.succeeded(rec.id);
      this.o.log.info({ recording: rec.id, target: t.describe, files: sums.length }, 'offloaded: remote SHA-256 verified');
      this.report(rec.id, 'verified');
      return 'verified';
    } catch (err) {
      return this.fail(rec.id, (err as Error).message);
    } finally {
      this.copyingId = null;
    }
  }

  /** One supervised copy (no restart: retries are the offload's, with its back-off); stopped when a trial starts. */
  private runCopy(t: OffloadTransport, id: number, local: string, rel: string): Promise<ChildExit> {
    const spec = t.copySpec(local, rel);
    const sup = new ChildSupervisor({ what: 'offload copy', logFields: { recording: id, file: rel }, makeSpec: () => spec, log: this.o.log, restart: false, stopGraceMs: 2000 });
    let out = '';
    sup.on('data', (d: Buffer) => (out = (out + d.toString('utf8')).slice(-8000)));
    this.copy = sup;
    return new Promise<ChildExit>((resolve) => {
      sup.once('exit', (e) => {
        this.copy = null;
        // rsync --stats: what went over the wire for this file (a resumed copy sends only the rest).
        const m = /Total bytes sent: ([\d,.]+)/.exec(out);
        if (m) this.sent.set(id, (this.sent.get(id) ?? 0) + Number(m[1]!.replace(/[,.]/g, '')));
        resolve(e);
      });
      // A trial may have started while the spec was made: do not start at all then.
      if (this.recording || this.stopped) {
        this.copy = null;
        resolve({ run: 0, code: null, signal: null, runMs: 0, problem: 'signal', message: 'not started: a trial records', stderrTail: [], restartInMs: null });
        return;
      }
      sup.start();
    });
  }

  private succeeded(id: number): void {
    this.failed.delete(id);
    this.backoff.reset();
    this.lastSuccessMs = this.now();
    this.recent.push(id);
    if (this.recent.length > RECENT_VERIFIED) this.recent.shift();
    this.warned = false;
  }

  private fail(id: number, error: string, retry = true): 'failed' {
    const delay = retry ? this.backoff.next() : 0;
    this.failed.set(id, { error, retryAt: this.now() + delay });
    this.lastError = { at: new Date(this.now()).toISOString(), recording_id: id, message: error };
    this.o.log.warn({ recording: id, err: error, retry_in_ms: retry ? delay : null }, 'offload: copy not confirmed');
    this.report(id, 'failed');
    this.checkStale();
    return 'failed';
  }

  private report(id: number | null, event: 'copying' | 'verified' | 'failed' | 'interrupted' | 'stale'): void {
    this.o.bus.report('offload', { ...this.status(), recording_id: id, event });
  }

  /** Raise the stale warning once when it starts to apply (again after a success). */
  checkStale(): void {
    const st = this.status();
    if (st.warning && !this.warned) {
      this.warned = true;
      this.o.bus.report('warning', { message: st.warning, offload: st });
      this.report(null, 'stale');
    } else if (!st.warning) this.warned = false;
  }

  status(): OffloadStatus {
    const { store, config } = this.o;
    const now = this.now();
    // A few queries whatever the number waiting: counts and sums in SQL, rows only for the first 100 listed.
    const { count, bytes, oldestFinishedMs, first, others } = store.offloadSummary(this.recent, 100);
    const view = (r: OffloadSizedRow, state: OffloadRecordingView['state']): OffloadRecordingView => ({
      recording_id: r.id,
      path: r.path,
      state,
      bytes: r.hashed_bytes ?? r.bytes ?? 0,
      error: state === 'failed' ? (this.failed.get(r.id)?.error ?? null) : null,
      bytes_sent: this.sent.get(r.id) ?? null,
    });
    const recordings = first.map((r) => view(r, r.id === this.copyingId ? 'copying' : this.failed.has(r.id) ? 'failed' : 'pending'));
    const verified = new Map(others.map((r) => [r.id, r]));
    for (const id of this.recent) {
      const r = verified.get(id);
      if (r?.offload_verified_at) recordings.push(view(r, 'verified'));
    }
    const stored = store.lastOffloadVerifiedAt();
    const lastMs = Math.max(stored ? Date.parse(stored) : 0, this.lastSuccessMs ?? 0) || null;
    return {
      mode: this.transport ? 'push' : 'pull',
      target: this.transport?.describe ?? null,
      activity: !this.transport ? 'idle' : this.copyingId !== null ? 'copying' : this.recording && count ? 'paused' : this.failed.size ? 'waiting' : 'idle',
      pending_recordings: count,
      bytes_pending: bytes,
      last_success_at: lastMs ? new Date(lastMs).toISOString() : null,
      last_error: this.lastError,
      stale_after_hours: config.stale_after_hours,
      warning: this.staleWarning(count, oldestFinishedMs, lastMs, now),
      recordings,
    };
  }

  /**
   * The oldest waiting recording that is hashed and not backing off, read a page at a time (a backlog of 100 000 was
   * read whole before every copy); else when the soonest backing-off one may be tried again (null: none is).
   */
  private nextToOffload(now: number): { next: RecordingRow | null; retryAt: number | null } {
    let retryAt: number | null = null;
    for (const page of this.o.store.finishedPages(200, true)) {
      const lacking = lackingChecksums(this.o.store, page);
      for (const r of page) {
        if (lacking.has(r.id)) continue;
        const at = this.failed.get(r.id)?.retryAt;
        if (at === undefined || at <= now) return { next: r, retryAt: null };
        retryAt = Math.min(retryAt ?? at, at);
      }
    }
    return { next: null, retryAt };
  }

  /**
   * Stale: recordings wait, and nothing was confirmed for stale_after_hours since the later of the last success
   * and the moment the oldest waiting recording was finished (a new box is not stale before its first day).
   */
  private staleWarning(waiting: number, oldestFinishedMs: number | null, lastMs: number | null, now: number): string | null {
    if (!waiting) return null;
    const since = Math.max(lastMs ?? 0, oldestFinishedMs ?? now);
    const hours = (now - since) / 3_600_000;
    if (hours < this.o.config.stale_after_hours) return null;
    const last = lastMs ? `last success ${new Date(lastMs).toISOString()}` : 'no backup has ever succeeded';
    const err = this.lastError ? `; last error: ${this.lastError.message}` : '';
    return `backup stale: ${waiting} recording(s) not offloaded, nothing confirmed for ${Math.floor(hours)} h (${last}; offload.stale_after_hours ${this.o.config.stale_after_hours})${err}`;
  }
}
