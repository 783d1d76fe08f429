import { mkdirSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { syncDir } from '../storage/durable-file.ts';
import type { StartSyncs } from './start-syncs.ts';

/**
 * Recording paths are built only from validated names and always checked to stay under the recordings root.
 *
 * Rule for session names (user input): 1-64 characters of letters, digits, ".", "_" and "-", starting with a
 * letter or digit; no "..". Anything else (slashes, control characters, absolute paths, spaces) is refused with
 * a message saying why, never silently rewritten, so the name a researcher typed is the name on disk.
 */
export const SESSION_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export class PathError extends Error {}

export function checkSessionName(name: string): string {
  if (typeof name !== 'string' || name.length === 0) throw new PathError('session name is empty');
  if (name.length > 64) throw new PathError('session name is longer than 64 characters');
  if (path.isAbsolute(name)) throw new PathError(`session name "${printable(name)}" is an absolute path`);
  if (/[/\\]/.test(name)) throw new PathError(`session name "${printable(name)}" contains a path separator`);
  if (name.includes('..')) throw new PathError(`session name "${printable(name)}" contains ".."`);
  if (/[\u0000-\u001f\u007f]/.test(name)) throw new PathError(`session name "${printable(name)}" contains control characters`);
  if (!SESSION_NAME_RE.test(name))
    throw new PathError(`session name "${printable(name)}" may only use letters, digits, ".", "_" and "-" and must start with a letter or digit`);
  return name;
}

function printable(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`).slice(0, 80);
}

export function trialTag(trial: number): string {
  if (!Number.isInteger(trial) || trial < 1) throw new PathError(`trial number must be a positive integer, got ${trial}`);
  return `trial${String(trial).padStart(3, '0')}`;
}

/** `<session>_trial<NNN>_<camera>[_segNN]` without extension. */
export function recordingBaseName(session: string, trial: number, cameraId: string, segment = 0): string {
  checkSessionName(session);
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$/.test(cameraId)) throw new PathError(`bad camera id "${printable(cameraId)}"`);
  const seg = segment > 0 ? `_seg${String(segment).padStart(2, '0')}` : '';
  return `${session}_${trialTag(trial)}_${cameraId}${seg}`;
}

/**
 * Resolve a path relative to the root and make sure it (and its real location, following symlinks that
 * exist) stays inside. Creates the root if missing.
 */
export function insideRoot(root: string, ...parts: string[]): string {
  const absRoot = path.resolve(root);
  mkdirSync(absRoot, { recursive: true });
  const realRoot = realpathSync(absRoot);
  const target = path.resolve(absRoot, ...parts);
  const rel = path.relative(absRoot, target);
  if (rel.startsWith('..') || path.isAbsolute(rel)) throw new PathError(`path escapes the recordings root: ${parts.join('/')}`);
  // Follow the deepest existing ancestor: a symlinked session folder must not lead outside either.
  let probe = target;
  for (;;) {
    try {
      const real = realpathSync(probe);
      const r = path.relative(realRoot, real);
      if (r.startsWith('..') || path.isAbsolute(r)) throw new PathError(`path escapes the recordings root: ${parts.join('/')}`);
      break;
    } catch (err) {
      if (err instanceof PathError) throw err;
      const up = path.dirname(probe);
      if (up === probe) break;
      probe = up;
    }
  }
  return target;
}

/**
 * Folder of a session, created on demand. New folders' entries are synced (a power cut must not lose a whole
 * session folder); once, when created: now, or in the start's batch (`syncs`), which completes before the start is
 * announced.
 */
export function sessionDir(root: string, session: string, syncs?: StartSyncs): string {
  return makeSessionDir(insideRoot(root, checkSessionName(session)), syncs);
}

/** sessionDir for a folder its caller has already confined to the root (insideRoot): created, its new entries synced. */
export function makeSessionDir(dir: string, syncs?: StartSyncs): string {
  const first = mkdirSync(dir, { recursive: true });
  if (first)
    for (let d = dir; d.length >= first.length; d = path.dirname(d)) {
      if (syncs) syncs.entryOf(d);
      else syncDir(path.dirname(d));
    }
  return dir;
}
