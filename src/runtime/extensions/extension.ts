/**
 * A side concern of the box (disk guard, telemetry, remux, journal, GPIO outputs, SSE, watchdog): it listens to
 * the event bus, may raise internal commands, and never changes a trial itself. Started with the box (or when
 * added to a started box), stopped in reverse order at shutdown.
 */
export interface Extension {
  readonly name: string;
  start(): void | Promise<void>;
  stop(): void | Promise<void>;
}
