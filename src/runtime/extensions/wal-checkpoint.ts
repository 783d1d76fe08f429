import { stat } from 'node:fs/promises';
import type { Logger } from '../../log/logger.ts';
import { CHECKPOINT_TOOL, checkpointElsewhere, type CheckpointResult, type CheckpointRunner } from '../../storage/wal-checkpoint.ts';
import type { Store } from '../../storage/store.ts';
import type { Extension } from './extension.ts';

/** How often the WAL's size is looked at (an fs.stat on the threadpool). */
const POLL_MS = 2000;
/** A checkpoint's time limit: a slow SD card copying a few MiB and syncing twice. */
const CHECKPOINT_TIMEOUT_MS = 30_000;
/** Consecutive failures after which the connection checkpoints itself again (on the event loop, as SQLite does). */
const MAX_FAILURES = 3;

/**
 * Keeps SQLite's WAL checkpoints off the event loop. By default the commit that takes the WAL past 1000 pages
 * checkpoints it on the spot: it copies the pages into the database and fsyncs the WAL and the database, so a frame
 * flush (or a trial start) stalls the event loop, and every camera's pipe with it, for 10 ms here and hundreds of
 * ms on an SD card, every 25-100 s of recording. Here rigcam's connection stops checkpointing
 * (`wal_autocheckpoint = 0`, and the WAL file is cut back whenever it starts over, so its size is what waits) and the
 * sqlite3 tool checkpoints from another process, through the box's tool shell, once the WAL passes the same 1000
 * pages. What stays on the event loop is what follows any complete checkpoint: the next commit starts the WAL over,
 * syncs its 32-byte header and truncates the file. Without the tool, or after three failures in a row, the
 * connection checkpoints itself again (logged): the WAL never grows unbounded.
 */
export class WalCheckpointExtension implements Extension {
  readonly name = 'wal-checkpoint';
  private timer: NodeJS.Timeout | null = null;
  private active = false;
  private failures = 0;
  private running: Promise<CheckpointResult | null> | null = null;
  /** The last checkpoint's result (tests, status). */
  last: CheckpointResult | null = null;

  constructor(private readonly o: { store: Store; run: CheckpointRunner; log: Logger; pollMs?: number }) {}

  /** When the tool runs, the connection stops checkpointing and the WAL's size is watched. */
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

  /** Checkpoint when the WAL holds as much as SQLite's own threshold. */
  private async poll(): Promise<void> {
    const size = await stat(`${this.o.store.file}-wal`).then((s) => s.size, () => 0);
    if (this.active && size >= this.o.store.walCheckpointBytes) await this.checkpointNow();
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      void this.poll().then(() => {
        if (this.active) this.schedule();
      });
    }, this.o.pollMs ?? POLL_MS);
    this.timer.unref();
  }

  private halt(): void {
    this.active = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.o.store.setAutoCheckpoint(true);
  }
}
