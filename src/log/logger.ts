import { pino, type Logger } from 'pino';

/**
 * One JSON object per line on stdout: journald keeps it as the MESSAGE and `journalctl -o cat`
 * shows it back verbatim. Level names instead of numbers so a person can grep them.
 */
export type { Logger };

export function createLogger(opts: { level?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  const level = opts.level ?? process.env.RIGCAM_LOG_LEVEL ?? 'info';
  return pino(
    {
      level,
      base: { svc: 'rigcam' },
      formatters: { level: (label) => ({ level: label }) },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    (opts.destination ?? pino.destination({ fd: 1, sync: true })) as pino.DestinationStream,
  );
}

/** A logger that drops everything, for library use and tests that do not look at logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
