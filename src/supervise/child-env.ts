/**
 * glibc's malloc reads its MALLOC_* variables once, when a process starts, and every child inherits them. The
 * systemd unit may tune malloc for rigcam's own process (it did: MALLOC_MMAP_THRESHOLD_=32768), and then the
 * cameras' ffmpeg paid for it: an mmap, munmap and fresh zeroed pages for every frame buffer, 1.8-2.1 x the CPU of
 * an x264 encode (docs/benchmarks.md, session 7). Removing the variables from process.env once this process has
 * started keeps the tuning here and starts every child (each spawn passes process.env or a copy of it) on glibc's
 * defaults. Returns the names removed.
 */
export function keepMallocTuningToThisProcess(env: NodeJS.ProcessEnv = process.env): string[] {
  const removed = Object.keys(env).filter((k) => /^MALLOC_[A-Z0-9_]+$/.test(k));
  for (const k of removed) delete env[k];
  return removed;
}
