import { mkdirSync } from 'node:fs';
import type { CameraConfig, Config } from '../config/schema.ts';
import type { SpaceReserve } from '../disk/reserve.ts';
import type { Logger } from '../log/logger.ts';
import type { Store } from '../storage/store.ts';
import { CameraRegistry } from './camera-registry.ts';
import type { CameraRuntime } from './camera-runtime.ts';
import { CommandBus } from './command-bus.ts';
import { commandTable } from './command-table.ts';
import { type CommandContext, type CommandHandler, type CommandResult } from './command-types.ts';
import { ALIASES } from './commands.ts';
import { EventBus } from './event-bus.ts';
import { ChecksumExtension } from './extensions/checksums.ts';
import { DiskExtension } from './extensions/disk.ts';
import type { Extension } from './extensions/extension.ts';
import { JournalExtension } from './extensions/journal.ts';
import { OffloadExtension } from './extensions/offload.ts';
import { RemuxExtension } from './extensions/remux.ts';
import { SessionExportExtension } from './extensions/session-export.ts';
import { TelemetryExtension } from './extensions/telemetry.ts';
import { WalCheckpointExtension } from './extensions/wal-checkpoint.ts';
import type { BoxStatus, StatusDataMap, StatusMessage, StatusName } from './status.ts';
import { readTimeSync, TIME_SYNC_TIMEOUT_MS } from './time-sync.ts';
import { TrialController } from './trial-controller.ts';
import { ToolShell } from '../supervise/tool-shell.ts';

export { cameraIdFromStableId } from './camera-registry.ts';
export { CommandError } from './errors.ts';

export interface BoxOptions {
  config: Config;
  store: Store;
  log: Logger;
  /** Absolute recordings root. */
  root: string;
  /** Module mode: cameras the host may assign take their settings from these (the YAML cameras), not started. */
  cameraTemplates?: readonly CameraConfig[];
  /** Start-up work a full disk postponed (the disk extension runs it once there is room; trials wait for it). */
  pendingRecovery?: () => Promise<void>;
  /** The database's space reserve, written again when its volume has room. */
  reserve?: SpaceReserve;
  /** Where /sys and /usr/share are (tests: a temp dir standing for them): a CSI sensor's trigger parameter, libcamera's rpi_apps.yaml. */
  sysRoot?: string;
  /** Wall clock of the offload (stale warning), for tests. */
  offloadNow?: () => number;
}

/**
 * The box, in the spirit of zigbee2mqtt's controller: it builds the core — the command bus (the one way anything
 * changes), the trial controller (sessions, trials, their state machine) and the camera registry — wires what
 * happens to cameras into internal commands, and runs the extensions (journal, disk guard and retention,
 * telemetry, remux, plus those the service adds: GPIO outputs, SSE, watchdog) on the typed event bus.
 */
export class BoxRuntime implements CommandHandler {
  /** For extensions (src/runtime/extensions and the *-extension modules beside their concern) only. */
  readonly bus = new EventBus();
  /** The queue; `raise` (internal commands) is for the runtime itself and tests. Transports use handleCommand. */
  readonly commands: CommandBus;
  private readonly registry: CameraRegistry;
  private readonly trials: TrialController;
  private readonly disk: DiskExtension;
  /** Offload state (push when configured, pull otherwise): status, last success/error, the stale warning. */
  readonly offload: OffloadExtension;
  private readonly extensions: Extension[] = [];
  /** Runs the time-sync tools after each start and the WAL checkpoints, so this (large) process never forks for them. */
  private readonly tools = new ToolShell({ timeoutMs: TIME_SYNC_TIMEOUT_MS });
  private started = false;
  private closing: Promise<void> | null = null;

  constructor(private readonly o: BoxOptions) {
    const { config, store, log, root } = o;
    const bus = this.bus;
    this.registry = new CameraRegistry({ config, store, log, bus, templates: o.cameraTemplates, sysRoot: o.sysRoot });
    this.disk = new DiskExtension({ config, store, log, bus, root, pendingRecovery: o.pendingRecovery, reserve: o.reserve, writeRate: () => this.registry.writeRate(this.trials.trialCameras), raise: (c, p) => void this.commands.raise(c, p) });
    this.trials = new TrialController({ config, store, bus, cameras: this.registry, root, refuseStart: () => this.disk.refuseStart(), timeSync: () => this.timeSync() });
    this.commands = new CommandBus({ table: commandTable({ cameras: this.registry, trials: this.trials, bus, root, status: () => this.status() }), aliases: ALIASES, bus, log });

    // What happens to a camera by itself changes the trial only through the command queue.
    this.registry.on('device_lost', (id, message) => void this.commands.raise('device_lost', { camera_id: id, message }));
    this.registry.on('recording_failed', (id, error) => {
      const full = isDiskFull(error);
      const message = `camera ${id}: recording stopped: ${full ? 'the disk is full' : error.message}`;
      void this.commands.raise('recording_failed', { camera_id: id, message, code: full ? 'disk_full' : 'internal' });
    });
    this.registry.on('segment', (id, s) => void this.commands.raise('segment_started', { camera_id: id, segment: s.segment, recording_id: s.recordingId, gap_us: s.gapUs }));

    // The journal first: every status and command is on disk before anyone else hears of it.
    this.use(new JournalExtension({ bus, store, log, context: () => this.trials.context(), retention: config.journal }));
    this.use(this.disk);
    this.use(
      new TelemetryExtension({
        bus,
        cameras: this.registry,
        intervalMs: config.telemetry.emit_interval_ms,
        disk: () => this.disk.status,
        offload: { intervalMs: config.telemetry.offload_interval_ms, status: () => this.offload.status() },
      }),
    );
    if (config.recording.remux_mp4) this.use(new RemuxExtension({ bus, store, root, keepTs: config.recording.keep_ts }));
    this.use(new ChecksumExtension({ bus, store, root, log }));
    this.use(new SessionExportExtension({ bus, store, root, log }));
    this.use(new WalCheckpointExtension({ store, log, run: (c, a, t) => this.tools.run(c, a, t) }));
    this.offload = new OffloadExtension({ bus, store, root, log, config: config.offload, now: o.offloadNow });
    this.use(this.offload);
  }

  /** Every camera, read-only (the registry owns them). */
  get cameras(): ReadonlyMap<string, CameraRuntime> {
    return this.registry.all;
  }

  /** Add an extension; it starts with the box, or now when the box is already running. */
  use(ext: Extension): void {
    this.extensions.push(ext);
    if (this.started || ext instanceof JournalExtension) void this.startExtension(ext);
  }

  private async startExtension(ext: Extension): Promise<void> {
    try {
      await ext.start();
    } catch (err) {
      this.o.log.error({ extension: ext.name, err: (err as Error).message }, 'extension failed to start');
    }
  }

  on(event: 'status', listener: (m: StatusMessage) => void): this {
    this.bus.on(event, listener);
    return this;
  }
  off(event: 'status', listener: (m: StatusMessage) => void): this {
    this.bus.off(event, listener);
    return this;
  }
  listenerCount(event: 'status'): number {
    return this.bus.listenerCount(event);
  }

  /** Emit a status (for the service's transports: serial and GPIO state). */
  report<K extends StatusName>(status: K, data: StatusDataMap[K], cameraId: string | null = null, commandId: string | null = null): void {
    this.bus.report(status, data, cameraId, commandId);
  }

  /**
   * Report `ready`, start the disk guard, assign every configured camera (in parallel; each reports device_ready
   * or device_error), then start the other extensions (triggers act only once the cameras are ready).
   */
  async initialize(): Promise<void> {
    mkdirSync(this.o.root, { recursive: true });
    this.tools.start();
    this.report('ready', { cameras: this.registry.ids(), recordings_root: this.o.root });
    await this.disk.start();
    await this.registry.assignAll();
    this.started = true;
    for (const ext of this.extensions) if (ext !== this.disk && !(ext instanceof JournalExtension)) await this.startExtension(ext);
  }

  /**
   * Refuse new commands from transports, stop any trial through the queue (after the commands already queued;
   * files finalised), release every camera, then stop the extensions in reverse order (the journal stays).
   */
  shutdown(): Promise<void> {
    // A second caller (SIGTERM during a module quit) waits for the same finalisation.
    this.closing ??= this.close();
    return this.closing;
  }

  private async close(): Promise<void> {
    void this.commands.close();
    await this.commands.raise('shutdown', {});
    await Promise.all(this.registry.list().map((c) => c.unassign()));
    for (const ext of [...this.extensions].reverse()) {
      if (ext instanceof JournalExtension) continue;
      try {
        await ext.stop();
      } catch (err) {
        this.o.log.error({ extension: ext.name, err: (err as Error).message }, 'extension failed to stop');
      }
    }
    this.tools.close();
  }

  /** The box's clock synchronisation now (chronyc, timedatectl), read without forking this process. */
  timeSync(): ReturnType<typeof readTimeSync> {
    return readTimeSync((c, a) => this.tools.run(c, a));
  }

  handleCommand(command: string, payload: unknown, ctx: CommandContext, commandId?: string | null): Promise<CommandResult> {
    return this.commands.handleCommand(command, payload, ctx, commandId);
  }

  /** The session and trial open now (ids), for what is stored beside them (sync edges). */
  context(): { sessionId: number | null; trialId: number | null } {
    return this.trials.context();
  }

  status(): BoxStatus {
    return { ...this.trials.status(), cameras: this.registry.status(), disk: this.disk.status, offload: this.offload.status() };
  }

  /** A pull offload's verdict on a copy (POST /api/recordings/:id/offloaded): null when confirmed, else why not. */
  offloadOutcome(recordingId: number, error: string | null): void {
    this.offload.noteOutcome(recordingId, error);
  }
}

/** ENOSPC from a file, SQLITE_FULL from the database: the same full disk. */
export function isDiskFull(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'ENOSPC' || code === 'SQLITE_FULL' || code === 'EDQUOT';
}
