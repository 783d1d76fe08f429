import { z } from 'zod';

/** Reply line endings by name, for YAML files where a literal "\r\n" is awkward to write. */
const LINE_ENDING_NAMES = { crlf: '\r\n', lf: '\n', cr: '\r' } as const;

const lineEnding = z.union([
  z.enum(['\r\n', '\n', '\r']),
  z.enum(['crlf', 'lf', 'cr']).transform((name) => LINE_ENDING_NAMES[name]),
]);

/**
 * The `serial:` section of the config. Input is always accepted with \r, \n or \r\n; `line_ending`
 * is what rigcam appends to its own answers.
 */
export const serialConfigSchema = z
  .strictObject({
    enabled: z.boolean().default(false),
    /** Prefer /dev/serial/by-id/...: stable across re-plugging, unlike /dev/ttyUSB0. */
    path: z.string().default(''),
    baud: z.number().int().min(50).max(4_000_000).default(115200),
    line_ending: lineEnding.default('\r\n'),
    /** Longest accepted line in bytes, without the line end. */
    max_line_bytes: z.number().int().min(32).max(8192).default(512),
    /** Lines per sliding second beyond which lines are refused (see flood-limiter.ts). */
    max_lines_per_second: z.number().int().min(1).max(1000).default(20),
    /** Commands waiting behind the one being executed; more are refused as busy. */
    max_pending: z.number().int().min(1).max(256).default(16),
    reconnect_min_ms: z.number().int().min(10).max(60_000).default(500),
    reconnect_max_ms: z.number().int().min(10).max(600_000).default(10_000),
  })
  .superRefine((cfg, ctx) => {
    if (cfg.enabled && cfg.path.trim() === '') {
      ctx.addIssue({ code: 'custom', path: ['path'], message: 'serial.path is required when serial.enabled is true' });
    }
    if (cfg.reconnect_max_ms < cfg.reconnect_min_ms) {
      ctx.addIssue({ code: 'custom', path: ['reconnect_max_ms'], message: 'must be >= reconnect_min_ms' });
    }
  });

export type SerialConfig = z.output<typeof serialConfigSchema>;
export type SerialConfigInput = z.input<typeof serialConfigSchema>;
