import { EventEmitter } from 'node:events';
import type { RecordingSummary } from '../recording/recording-file.ts';
import { monoNowUs, type CommandResult, type CommandSource } from './command-types.ts';
import type { StatusDataMap, StatusMessage, StatusName } from './status.ts';

/** A command as it was run: what the journal keeps. */
export interface CommandRecord {
  name: string;
  source: CommandSource;
  monoUs: number;
  payload: unknown;
  result: CommandResult;
}

/**
 * Everything the core tells the extensions. Statuses are the public ones; the others are for extensions only
 * (they never leave the box as such).
 */
export interface BusEvents {
  status: [StatusMessage];
  /** A command finished (ok or not). */
  command: [CommandRecord];
  /** A trial started (true) or ended (false). */
  recording: [boolean];
  /** A trial ended: its files are finalised. */
  trial_stopped: [RecordingSummary[]];
}

/** The typed event bus between the core (command bus, trial controller, camera registry) and the extensions. */
export class EventBus extends EventEmitter<BusEvents> {
  /** Emit a status to every subscriber (the journal extension records it). */
  report<K extends StatusName>(status: K, data: StatusDataMap[K], cameraId: string | null = null, commandId: string | null = null): void {
    const msg = { type: 'status', status, timestamp: Date.now() / 1000, mono_us: monoNowUs(), camera_id: cameraId, command_id: commandId, data } as StatusMessage;
    this.emit('status', msg);
  }
}
