import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const dirs: string[] = [];
// At process exit rather than in an after() hook: a hook registered from inside before() runs when that hook
// ends, which would delete a box's folder while the box still uses it.
process.once('exit', () => {
  if (process.env.RIGCAM_KEEP_TMP) return;
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A fresh temp dir, removed when the test process exits (kept when RIGCAM_KEEP_TMP is set, to look at). */
export function tmpDir(prefix = 'rigcam-test-'): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}
