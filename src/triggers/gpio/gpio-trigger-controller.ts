import { EventEmitter } from 'node:events';
import type { CommandHandler, CommandResult } from '../../runtime/command-types.ts';
import { silentLogger, type Logger } from '../../log/logger.ts';
import { EdgeFilter, type LogicalEdge } from './edge-filter.ts';
import type { GpioConfig, GpioInputConfig } from './gpio-config.ts';
import type { EdgeEvent, EdgeSource, GpioStatus, OutputLine } from './gpio-hardware.ts';
import { StatusLed } from './status-led.ts';
import { SyncPulser, type SyncEdge } from './sync-pulser.ts';

export interface GpioCommandRecord {
  command: string;
  payload: Record<string, unknown>;
  triggerMonoUs: number;
  line: number;
  result: CommandResult;
}

export interface GpioControllerStatus {
  /** ready: every helper runs; error: at least one failed and is being retried. */
  state: 'starting' | 'ready' | 'error' | 'stopped';
  sources: GpioStatus[];
}

export interface GpioTriggerEvents {
  status: [GpioControllerStatus];
  command: [GpioCommandRecord];
  /** An edge of a `sync` input, or of the sync train out. */
  sync_edge: [SyncEdge];
}

export interface GpioTriggerControllerOptions {
  config: GpioConfig;
  handler: CommandHandler;
  edgeSource: EdgeSource;
  /** Driven active while any camera records (see setRecording). */
  recordingLine?: OutputLine;
  statusLedLine?: OutputLine;
  /** The sync train's output line (config outputs.sync_out). */
  syncOutLine?: OutputLine;
  /** The clock of the edge source's times: the kernel's (libgpiod) or user space (sysfs). */
  inputClock?: 'gpio-kernel' | 'gpio-sysfs-userspace';
  logger?: Logger;
  /** See EdgeFilterOptions.settleMs. */
  settleMs?: number;
}

interface LineRoute {
  input: GpioInputConfig;
  role: 'main' | 'stop';
  /** Absent for a sync line without debounce: its raw edges are its edges. */
  filter?: EdgeFilter;
}

/**
 * Turns GPIO edges into commands on the CommandHandler:
 * - level: start_recording while the line is active, stop_recording when it goes inactive;
 * - toggle: each active edge starts or stops;
 * - start_stop: an active edge on `line` starts, one on `stop_line` stops;
 * - marker: each active edge sends `mark` with the input's label;
 * - sync: no command; every edge (debounced only when debounce_ms is set) is emitted as `sync_edge`.
 * Every command carries the kernel time of the edge that caused it (triggerMonoUs), also
 * when debounce or the minimum pulse width made it wait.
 */
export class GpioTriggerController extends EventEmitter<GpioTriggerEvents> {
  private readonly routes = new Map<number, LineRoute>();
  private readonly inputSources = new Map<string, GpioStatus>();
  private readonly outputSources = new Map<string, GpioStatus>();
  private readonly logger: Logger;
  private readonly led?: StatusLed;
  /** The sync train out, when configured. */
  readonly syncOut?: SyncPulser;
  private queue: Promise<void> = Promise.resolve();
  private recording = false;
  private started = false;
  private readonly onEdge = (e: EdgeEvent) => this.handleEdge(e);
  private readonly onInputStatus = (s: GpioStatus) => this.handleStatus(this.inputSources, s);
  private readonly onOutputStatus = (s: GpioStatus) => this.handleStatus(this.outputSources, s);
  /** The sync output changes level every pulse: only a change of its state is news. */
  private readonly onSyncOutStatus = (s: GpioStatus) => {
    const prev = this.outputSources.get(s.source);
    if (prev && prev.state === s.state && prev.fault === s.fault) this.outputSources.set(s.source, s);
    else this.handleStatus(this.outputSources, s);
  };
  private readonly onSyncOutEdge = (e: SyncEdge) => this.emit('sync_edge', e);

  constructor(private readonly opts: GpioTriggerControllerOptions) {
    super();
    this.logger = (opts.logger ?? silentLogger()).child({ component: 'gpio' });
    const settleMs = opts.settleMs ?? 15;
    for (const input of opts.config.inputs) {
      const makeRoute = (line: number, role: LineRoute['role']) => {
        if (input.mode === 'sync' && input.debounce_ms === 0) {
          this.routes.set(line, { input, role });
          return;
        }
        const filter = new EdgeFilter(
          { debounceUs: input.debounce_ms * 1000, minPulseUs: input.min_pulse_ms * 1000, settleMs },
          (edge) => this.handleLogical(line, input, role, edge),
        );
        this.routes.set(line, { input, role, filter });
      };
      makeRoute(input.line, 'main');
      if (input.stop_line !== undefined) makeRoute(input.stop_line, 'stop');
    }
    if (opts.statusLedLine) this.led = new StatusLed(opts.statusLedLine, this.logger);
    const syncOut = opts.config.outputs.sync_out;
    if (syncOut && opts.syncOutLine) this.syncOut = new SyncPulser(syncOut, opts.syncOutLine, this.logger);
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.opts.edgeSource.on('edge', this.onEdge);
    this.opts.edgeSource.on('status', this.onInputStatus);
    this.opts.recordingLine?.on('status', this.onOutputStatus);
    this.opts.statusLedLine?.on('status', this.onOutputStatus);
    this.opts.syncOutLine?.on('status', this.onSyncOutStatus);
    this.syncOut?.on('edge', this.onSyncOutEdge);
    this.syncOut?.start();
    this.led?.show('off');
    this.opts.recordingLine?.set(this.recording).catch(() => {});
    if (this.routes.size > 0) this.opts.edgeSource.start();
    else this.publish();
  }

  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    for (const route of this.routes.values()) route.filter?.dispose();
    await this.syncOut?.stop();
    this.syncOut?.off('edge', this.onSyncOutEdge);
    await this.opts.edgeSource.stop();
    this.opts.edgeSource.off('edge', this.onEdge);
    this.opts.edgeSource.off('status', this.onInputStatus);
    await this.queue;
    await Promise.all([this.opts.recordingLine?.close(), this.led?.close(), this.opts.syncOutLine?.close()]);
    this.opts.syncOutLine?.off('status', this.onSyncOutStatus);
    this.opts.recordingLine?.off('status', this.onOutputStatus);
    this.opts.statusLedLine?.off('status', this.onOutputStatus);
    this.emit('status', this.status);
  }

  /** The lead calls this whenever recording starts or stops anywhere (any camera, any transport). */
  async setRecording(recording: boolean): Promise<void> {
    this.recording = recording;
    if (!this.opts.recordingLine || !this.started) return;
    try {
      await this.opts.recordingLine.set(recording);
    } catch (err) {
      this.logger.error({ err }, 'recording output line not driven');
    }
  }

  get status(): GpioControllerStatus {
    const sources = [...this.inputSources.values(), ...this.outputSources.values()];
    let state: GpioControllerStatus['state'] = 'ready';
    if (!this.started) state = 'stopped';
    else if (sources.some((s) => s.state === 'restarting' || s.state === 'failed')) state = 'error';
    else if (sources.some((s) => s.state === 'starting') || (this.routes.size > 0 && this.inputSources.size === 0)) state = 'starting';
    return { state, sources };
  }

  /** Failures are logged where they happen (gpiomon/gpioset supervisors); here they set the state. */
  private handleStatus(sources: Map<string, GpioStatus>, status: GpioStatus): void {
    sources.set(status.source, status);
    this.publish();
  }

  private publish(): void {
    const status = this.status;
    this.led?.show(status.state === 'ready' ? 'ready' : status.state === 'error' ? 'error' : 'off');
    this.emit('status', status);
  }

  private handleEdge(e: EdgeEvent): void {
    const route = this.routes.get(e.line);
    if (!route) return;
    const active = e.rising !== route.input.active_low;
    // A sync line without debounce has no filter: its raw edges are its edges.
    if (!route.filter) this.syncEdge(e.line, active, e.monoUs);
    else route.filter.push(active, e.monoUs);
  }

  private syncEdge(line: number, active: boolean, monoUs: number): void {
    const clock = this.opts.inputClock ?? 'gpio-kernel';
    this.emit('sync_edge', { direction: 'in', line, active, monoUs, clock, uncertaintyUs: null, seq: null });
  }

  private handleLogical(line: number, input: GpioInputConfig, role: LineRoute['role'], edge: LogicalEdge): void {
    switch (input.mode) {
      case 'level':
        return this.dispatch(line, edge.active ? 'start_recording' : 'stop_recording', {}, edge.monoUs);
      case 'toggle':
        if (edge.active) this.dispatch(line, () => (this.recording ? 'stop_recording' : 'start_recording'), {}, edge.monoUs);
        return;
      case 'start_stop':
        if (edge.active) this.dispatch(line, role === 'main' ? 'start_recording' : 'stop_recording', {}, edge.monoUs);
        return;
      case 'marker':
        if (edge.active) this.dispatch(line, 'mark', { label: input.label ?? `gpio${input.line}` }, edge.monoUs);
        return;
      case 'sync':
        return this.syncEdge(line, edge.active, edge.monoUs);
    }
  }

  /** Commands go out one at a time, in edge order; a toggle decides when its turn comes. */
  private dispatch(line: number, command: string | (() => string), payload: Record<string, unknown>, triggerMonoUs: number): void {
    this.queue = this.queue.then(async () => {
      const name = typeof command === 'function' ? command() : command;
      let result: CommandResult;
      try {
        result = await this.opts.handler.handleCommand(name, payload, { source: 'gpio', triggerMonoUs });
      } catch (err) {
        result = { ok: false, command: name, error: err instanceof Error ? err.message : String(err) };
      }
      if (result.ok && name === 'start_recording') this.recording = true;
      if (result.ok && name === 'stop_recording') this.recording = false;
      const log = { line, command: name, triggerMonoUs, ok: result.ok, error: result.error };
      if (result.ok) this.logger.info(log, 'GPIO trigger');
      else this.logger.warn(log, 'GPIO trigger refused');
      this.emit('command', { command: name, payload, triggerMonoUs, line, result });
    });
  }
}
