import { mkdtemp, mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(here, '../..');
export const FIXTURES = path.join(REPO, 'hw-fixtures');
export const V4L2_FIXTURES = path.join(FIXTURES, 'v4l2');
export const STANDINS = path.join(REPO, 'test/standins');

export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), `rigcam-${prefix}-`));
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/** Environment whose PATH starts with the stand-ins (and an optional extra folder). */
export function standinEnv(extra: Record<string, string> = {}, prependDirs: string[] = [STANDINS]): NodeJS.ProcessEnv {
  return { ...process.env, PATH: [...prependDirs, process.env.PATH ?? ''].join(path.delimiter), ...extra };
}

/** A folder whose entries videoN link to fixture folders, for RIGCAM_FIXTURE_DIR. */
export async function fixtureDevices(map: Record<string, string>): Promise<string> {
  const dir = await tempDir('fixdev');
  for (const [node, target] of Object.entries(map)) await symlink(target, path.join(dir, node));
  return dir;
}

/**
 * Build a fake /dev + /sys tree below a temp root from a recorded system (hw-fixtures/v4l2/systems/X):
 * sys/class/video4linux/videoN/name holds the node's card name (what sysfs shows), dev/videoN exists.
 */
export async function fakeRootFromSystem(systemDir: string): Promise<string> {
  const root = await tempDir('root');
  await mkdir(path.join(root, 'dev'), { recursive: true });
  for (const node of (await readdir(systemDir)).filter((n) => /^video\d+$/.test(n))) {
    const infoFile = path.join(systemDir, node, 'info.txt');
    const info = existsSync(infoFile) ? await readFile(infoFile, 'utf8') : '';
    const card = info.match(/Card type\s*:\s*(.*)/)?.[1]?.trim() ?? node;
    const sys = path.join(root, 'sys/class/video4linux', node);
    await mkdir(sys, { recursive: true });
    await writeFile(path.join(sys, 'name'), `${card}\n`);
    await writeFile(path.join(root, 'dev', node), '');
  }
  return root;
}

export async function addV4lLink(root: string, kind: 'by-id' | 'by-path', name: string, node: string): Promise<void> {
  const dir = path.join(root, 'dev/v4l', kind);
  await mkdir(dir, { recursive: true });
  await symlink(`../../${node}`, path.join(dir, name));
}
