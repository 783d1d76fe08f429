import { z } from 'zod';

/**
 * A free-space threshold as a person writes it: "500MB", "2GB", "5%" of the volume, or a bare number of MB.
 * Resolved against the volume's size when checked, so one config fits SD cards of any size.
 */
const THRESHOLD_RE = /^\s*(\d+(?:\.\d+)?)\s*(MB|GB|%)\s*$/i;
/** 1 PB: anything larger is a typo (1e30), not a disk. */
const MAX_MB = 1024 ** 3;

export const thresholdSchema = z.union([
  z.number().min(0).max(MAX_MB, `a threshold in MB is at most ${MAX_MB} (1 PB)`),
  z
    .string()
    .regex(THRESHOLD_RE, 'a threshold is a number of MB, or like "500MB", "2GB" or "5%"')
    .refine((t) => {
      const m = THRESHOLD_RE.exec(t)!;
      const v = Number(m[1]);
      const unit = m[2]!.toUpperCase();
      return unit === '%' ? v < 100 : unit === 'GB' ? v <= MAX_MB / 1024 : v <= MAX_MB;
    }, 'a percentage must be below 100%, an amount at most 1 PB'),
]);

export type Threshold = z.infer<typeof thresholdSchema>;

export function thresholdBytes(t: Threshold, totalBytes: number): number {
  if (typeof t === 'number') return t * 1024 * 1024;
  const m = THRESHOLD_RE.exec(t)!;
  const v = Number(m[1]);
  switch (m[2]!.toUpperCase()) {
    case 'MB':
      return v * 1024 * 1024;
    case 'GB':
      return v * 1024 * 1024 * 1024;
    default:
      return (v / 100) * totalBytes;
  }
}

export const diskConfigSchema = z
  .strictObject({
    /** Below this a trial start is refused. */
    min_free_to_start: thresholdSchema.default('500MB'),
    /** Below this a warning status is emitted (once per crossing). */
    warn_free: thresholdSchema.default('2GB'),
    /** Below this recordings are stopped cleanly, files finalised. */
    stop_free: thresholdSchema.default('200MB'),
    poll_idle_ms: z.number().int().min(100).max(600_000).default(10_000),
    poll_recording_ms: z.number().int().min(50).max(60_000).default(1000),
    /**
     * Optional: delete recordings, oldest first, to keep this much free, but ONLY recordings marked as
     * offloaded (copied off the box). Data not known to be copied is never deleted.
     */
    retention: z
      .strictObject({
        enabled: z.boolean().default(false),
        keep_free: thresholdSchema.default('5GB'),
        /** Only recordings whose copy was checked against their SHA-256 (POST /api/recordings/:id/offloaded) may go. */
        require_verified_offload: z.boolean().default(false),
      })
      .prefault({}),
  })
  .superRefine((d, ctx) => {
    // Ordered thresholds: a guard whose stop level sits above its start level would refuse nothing and stop
    // every trial at once. Only comparable units are checked here (a % against MB needs the volume's size); 0 turns a
    // level off and is not ordered.
    const order = (lo: keyof DiskLevels, hi: keyof DiskLevels): void => {
      const a = comparable(d[lo]);
      const b = comparable(d[hi]);
      if (a && b && a.value > 0 && b.value > 0 && a.unit === b.unit && a.value >= b.value)
        ctx.addIssue({ code: 'custom', path: [lo], message: `${lo} (${String(d[lo])}) must be below ${hi} (${String(d[hi])})` });
    };
    order('stop_free', 'min_free_to_start');
    order('stop_free', 'warn_free');
  })
  .prefault({});

type DiskLevels = { stop_free: Threshold; min_free_to_start: Threshold; warn_free: Threshold };

/** A threshold as bytes (absolute) or as a fraction of the volume: the two are only comparable among themselves. */
function comparable(t: Threshold): { unit: 'bytes' | 'percent'; value: number } | null {
  if (typeof t === 'number') return { unit: 'bytes', value: t * 1024 * 1024 };
  const m = THRESHOLD_RE.exec(t);
  if (!m) return null;
  return m[2] === '%' ? { unit: 'percent', value: Number(m[1]) } : { unit: 'bytes', value: thresholdBytes(t, 0) };
}

export type DiskConfig = z.infer<typeof diskConfigSchema>;
