import { z } from 'zod';

/**
 * A free-space threshold as a person writes it: "500MB", "2GB", "5%" of the volume, or a bare number of MB.
 * Resolved against the volume's size when checked, so one config fits SD cards of any size.
 */
export const thresholdSchema = z.union([
  z.number().min(0),
  z.string().regex(/^\s*\d+(\.\d+)?\s*(MB|GB|%)\s*$/i, 'a threshold is a number of MB, or like "500MB", "2GB" or "5%"'),
]);

export type Threshold = z.infer<typeof thresholdSchema>;

export function thresholdBytes(t: Threshold, totalBytes: number): number {
  if (typeof t === 'number') return t * 1024 * 1024;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(MB|GB|%)\s*$/i.exec(t)!;
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
      .strictObject({ enabled: z.boolean().default(false), keep_free: thresholdSchema.default('5GB') })
      .prefault({}),
  })
  .prefault({});

export type DiskConfig = z.infer<typeof diskConfigSchema>;
