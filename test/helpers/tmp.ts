import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after } from 'node:test';

/** A fresh temp dir removed after the test file (kept when RIGCAM_KEEP_TMP is set, to look at). */
export function tmpDir(prefix = 'rigcam-test-'): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  after(() => {
    if (!process.env.RIGCAM_KEEP_TMP) rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}
