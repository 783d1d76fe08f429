import { z } from 'zod';

/**
 * `offload:` in the config. `target` turns on push offload (the box copies its finished recordings itself, after
 * each trial while idle); without it, offload is pulled (GET /api/offload/manifest). `stale_after_hours` applies to
 * both: a backup that has not succeeded for that long while recordings wait raises a warning.
 */

/** Names that end up on a remote command line: printable, no control characters (quoted when passed). */
const remotePath = z
  .string()
  .min(1)
  .max(1024)
  .refine((s) => !/[\u0000-\u001f\u007f]/.test(s), 'must not contain control characters (line breaks, tabs)');

/** An `ssh -o` option: `Name=value`, no spaces or quotes (ProxyCommand-style commands are not options). */
const sshOption = z
  .string()
  .regex(/^[A-Za-z][A-Za-z0-9]{1,63}=[A-Za-z0-9._,:/@+=%~-]{1,512}$/, 'an ssh option as Name=value (e.g. StrictHostKeyChecking=yes): letters for the name, no spaces or quotes in the value');

const rsyncTarget = z.strictObject({
  type: z.literal('rsync'),
  /** The backup server (name or address), reached with ssh. */
  host: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$|^\[[0-9A-Fa-f:.]{2,45}\]$/, 'a host name or IP address (IPv6 in [brackets])'),
  /** Absolute folder on the server; the box's recordings go under <path>/<box>/ in the recordings root's layout. */
  path: remotePath.refine((p) => p.startsWith('/'), 'must be an absolute path on the server'),
  user: z.string().regex(/^[a-z_][a-z0-9_.-]{0,31}$/, 'a login name: lowercase letters, digits, "_", "." or "-"').optional(),
  port: z.number().int().min(1).max(65535).default(22),
  identity_file: z.string().regex(/^\/[A-Za-z0-9._/+-]{1,1023}$/, 'an absolute path of letters, digits and . _ / + -').optional(),
  ssh_options: z.array(sshOption).max(16, 'at most 16 ssh options').default([]),
});

const rcloneTarget = z.strictObject({
  type: z.literal('rclone'),
  /** `remote:path` as `rclone listremotes` names the remote; the box's recordings go under <path>/<box>/. */
  remote: remotePath.refine((r) => /^[A-Za-z0-9_][A-Za-z0-9_. -]{0,63}:/.test(r), 'an rclone remote as name:path (the name as in rclone.conf)'),
  config_file: z.string().min(1).max(1024).refine((p) => p.startsWith('/'), 'must be an absolute path').optional(),
});

export const offloadTargetSchema = z.discriminatedUnion('type', [rsyncTarget, rcloneTarget]);

export const offloadConfigSchema = z
  .strictObject({
    /** Where push offload copies to; null: no push (pull offload only). */
    target: offloadTargetSchema.nullable().default(null),
    /** The box's folder on the target (default: the host name). */
    box_name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'letters, digits, ".", "_" and "-", starting with a letter or digit').optional(),
    /** Bandwidth limit of a copy, KiB/s (0: none): keeps the network and the SD card free for the next trial. */
    bwlimit_kbps: z.number().int().min(0).max(10_000_000).default(20_000),
    /** A copy that moves no data for this long is given up (and retried). */
    io_timeout_s: z.number().int().min(5).max(3600).default(120),
    /** Retries of a failed copy or check: exponential back-off from retry_initial_ms up to retry_max_ms. */
    retry_initial_ms: z.number().int().min(10).max(3_600_000).default(30_000),
    retry_max_ms: z.number().int().min(100).max(86_400_000).default(3_600_000),
    /** A backup that has not succeeded for this long while recordings wait raises a warning (push or pull). */
    stale_after_hours: z.number().positive().max(24 * 365).default(24),
  })
  .refine((o) => o.retry_max_ms >= o.retry_initial_ms, { message: 'retry_max_ms must not be below retry_initial_ms', path: ['retry_max_ms'] })
  .prefault({});

export type OffloadConfig = z.infer<typeof offloadConfigSchema>;
export type OffloadTarget = z.infer<typeof offloadTargetSchema>;
