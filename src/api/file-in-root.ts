import { realpathSync } from 'node:fs';
import path from 'node:path';
import { HttpError } from './http-error.ts';

/**
 * The absolute path of a file the database names relative to the recordings root, refused (403) if it — or
 * what its symlinks lead to — lies outside the root. The database is trusted no further than the file system.
 */
export function fileInRoot(root: string, stored: string): string {
  const absRoot = path.resolve(root);
  const target = path.resolve(absRoot, stored);
  const rel = path.relative(absRoot, target);
  if (!rel || rel.startsWith('..') || path.isAbsolute(rel)) throw new HttpError(403, 'refused: the stored path leaves the recordings root');
  let real: string;
  let realRoot: string;
  try {
    realRoot = realpathSync(absRoot);
    real = realpathSync(target);
  } catch {
    throw new HttpError(404, 'the file is not on the box (moved, offloaded or never written)');
  }
  const realRel = path.relative(realRoot, real);
  if (!realRel || realRel.startsWith('..') || path.isAbsolute(realRel)) throw new HttpError(403, 'refused: the stored path leaves the recordings root');
  return real;
}
