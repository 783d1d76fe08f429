import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

/** rigcam's version, from the package.json beside src/ (working tree) or dist/ (a release). */
export function packageVersion(): string {
  for (const p of [path.join(here, '../package.json'), path.join(here, '../../package.json')]) {
    try {
      return (JSON.parse(readFileSync(p, 'utf8')) as { version?: string }).version ?? '0.0.0';
    } catch {
      /* next */
    }
  }
  return '0.0.0';
}
