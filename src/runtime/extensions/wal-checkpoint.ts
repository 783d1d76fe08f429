import type { Logger } from '../../log/logger.ts';
import { CHECKPOINT_TOOL, checkpointElsewhere, type CheckpointResult, type CheckpointRunner } from '../../storage/wal-checkpoint.ts';
import type { Store } from '../../storage/store.ts';
import type { Extension } from './extension.ts';

/** SQLite's own threshold (wal_autocheckpoint's default): the WAL is checkpointed about this often. */
const TARGET_PAGES = 1000;
/** Between checkpoints: from 10 s (2 cameras at 120 fps add ~40 pages/s) to 5 min (an idle box). */
const MIN_INTERVAL_MS = 10_000;
const MAX_INTERVAL_MS = 300_000;
/** A checkpoint's time limit: a slow SD card copying a few MiB and syncing twice. */
const CHECKPOINT_TIMEOUT_MS = 30_000;
/** Consecutive failures after which the connection checkpoints itself again (on the event loop, as SQLite does). */
const MAX_FAILURES = 3;

/**
 * Keeps SQLite's WAL checkpoints off the event loop. By default the commit that takes the WAL past 1000 pages
 * checkpoints it on the spot: it copies the pages into the database and fsyncs the WAL and the database, so a frame
 * flush (or a trial start) stalls the event loop, and every camera's pipe with it, for 10 ms here and hundreds of
 * ms on an SD card, every 25-100 s of recording. Here rigcam's connection stops checkpointing
 * (`wal_autocheckpoint = 0`) and the sqlite3 tool does it from another process, through the box's tool shell, about
 * as often as SQLite would (the interval halves while the WAL grows past 1000 pages between two checkpoints and
 * doubles while it grows less than 250). What stays on the event loop is what follows any complete checkpoint: the
 * next commit starts the WAL over and syncs its 32-byte header. Without the tool, or after three failures in a row,
 * the connection checkpoints itself again (logged): the WAL never grows unbounded.
 */
export class WalCheckpointExtension implements Extension {
  readonly name = 'wal-checkpoint';
  private timer: NodeJS.Timeout | null = null;
  private active = false;
  private intervalMs: number;
  private failures = 0;
  private running: Promise<CheckpointResult | null> | null = null;
  /** The last checkpoint's result (tests, status). */
  last: CheckpointResult | null = null;

  constructor(private readonly o: { store: Store; run: CheckpointRunner; log: Logger; minIntervalMs?: number }) {
    this.intervalMs = o.minIntervalMs ?? MIN_INTERVAL_MS;
  }

  /** When the tool runs, the connection stops checkpointing and the first checkpoint is due after the interval. */
  async start(): Promise<void> {
    if (!this.o.store.shared) return; // nobody else can open it (in memory, exclusive locking): SQLite's own checkpoints
    const probe = await this.o.run(CHECKPOINT_TOOL, ['-version'], CHECKPOINT_TIMEOUT_MS);
    if (!probe.found || probe.exitCode !== 0) {
      const why = probe.found ? `${CHECKPOINT_TOOL} -version exited ${probe.exitCode}` : `${CHECKPOINT_TOOL} is not installed`;
      this.o.log.warn({ err: why }, `WAL checkpoints stay on the event loop (install ${CHECKPOINT_TOOL} to move them off it)`);
      return;
    }
    this.o.store.setAutoCheckpoint(false);
    this.active = true;
    this.schedule();
  }

  /** One checkpoint now (one at a time); null when it failed or checkpoints are not run elsewhere. */
  checkpointNow(): Promise<CheckpointResult | null> {
    if (!this.active) return Promise.resolve(null);
    this.running ??= checkpointElsewhere(this.o.store.file, this.o.run, CHECKPOINT_TIMEOUT_MS)
      .then((r) => {
        this.failures = 0;
        this.last = r;
        const min = this.o.minIntervalMs ?? MIN_INTERVAL_MS;
        if (!r.busy && r.walPages >= TARGET_PAGES) this.intervalMs = Math.max(min, this.intervalMs / 2);
        else if (!r.busy && r.walPages < TARGET_PAGES / 4) this.intervalMs = Math.min(Math.max(min, MAX_INTERVAL_MS), this.intervalMs * 2);
        return r;
      })
      .catch((err: Error) => {
        this.failures += 1;
        this.o.log.error({ err: err.message, failures: this.failures }, 'WAL checkpoint failed');
        if (this.failures >= MAX_FAILURES && this.active) {
          this.o.log.error({ failures: this.failures }, 'WAL checkpoints are back on the event loop');
          this.halt();
        }
        return null;
      })
      .finally(() => (this.running = null));
    return this.running;
  }

  /** The connection checkpoints itself again (its close at shutdown checkpoints what is left). */
  async stop(): Promise<void> {
    await this.running;
    if (this.active) this.halt();
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      void this.checkpointNow().then(() => {
        if (this.active) this.schedule();
      });
    }, this.intervalMs);
    this.timer.unref();
  }

  private halt(): void {
    this.active = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.o.store.setAutoCheckpoint(true);
  }
}
