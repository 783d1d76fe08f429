import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { isNode, parseDocument, visit } from 'yaml';
import type { z } from 'zod';
import { configSchema, type Config } from './schema.ts';

export class ConfigError extends Error {
  constructor(
    message: string,
    readonly file: string | null,
    readonly problems: string[],
  ) {
    super(message);
  }
}

/** Where the config is looked up, first match wins. */
export function configCandidates(explicit: string | undefined, env: NodeJS.ProcessEnv = process.env): string[] {
  if (explicit) return [explicit];
  if (env.RIGCAM_CONFIG) return [env.RIGCAM_CONFIG];
  return ['/etc/rigcam/rigcam.yaml', path.resolve('rigcam.yaml')];
}

export interface LoadedConfig {
  config: Config;
  /** The file read, or null when none exists and defaults are used. */
  file: string | null;
}

/** "cameras[0].fps" from a zod path. */
export function keyPath(p: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const k of p) out += typeof k === 'number' ? `[${k}]` : out ? `.${String(k)}` : String(k);
  return out || '(top level)';
}

export function formatIssues(issues: ReadonlyArray<z.core.$ZodIssue>): string[] {
  return issues.map((i) => {
    if (i.code === 'unrecognized_keys') {
      const where = i.path.length ? `${keyPath(i.path)}: ` : '';
      return `${where}unknown key${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => `"${k}"`).join(', ')}`;
    }
    return `${keyPath(i.path)}: ${i.message}`;
  });
}

/** Validate an already-parsed object (used by the API and apply_config too). */
export function parseConfig(raw: unknown, file: string | null = null): Config {
  const res = configSchema.safeParse(raw ?? {});
  if (!res.success) {
    const problems = formatIssues(res.error.issues);
    throw new ConfigError(`invalid config${file ? ` ${file}` : ''}:\n  ${problems.join('\n  ')}`, file, problems);
  }
  return res.data;
}

export function readConfigFile(file: string): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config ${file}: ${(err as Error).message}`, file, [(err as Error).message]);
  }
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length) {
    const problems = doc.errors.map((e) => e.message.split('\n')[0] ?? e.message);
    throw new ConfigError(`invalid YAML in ${file}:\n  ${problems.join('\n  ')}`, file, problems);
  }
  // Explicit tags (!!binary, !!js/regexp, custom !tags) build values no key of the config can take; refuse them by
  // name instead of letting a Buffer reach the schema and produce an error that lists its methods.
  const tagged: string[] = [];
  visit(doc, (_key, node) => {
    // The parser sets `tag` only where the file writes one.
    if (isNode(node) && node.tag) {
      const tag = node.tag.replace('tag:yaml.org,2002:', '!!');
      tagged.push(`line ${lineOf(text, node.range?.[0] ?? 0)}: YAML tag ${tag} is not supported; write a plain value`);
    }
  });
  if (tagged.length) throw new ConfigError(`invalid config ${file}:\n  ${tagged.join('\n  ')}`, file, tagged);
  return parseConfig(doc.toJS(), file);
}

function lineOf(text: string, offset: number): number {
  return text.slice(0, offset).split('\n').length;
}

/**
 * Load the config: an explicit path or RIGCAM_CONFIG must exist; the default locations are optional and
 * an absent file means built-in defaults (one `test` camera), so rigcam runs on any machine.
 */
export function loadConfig(explicit?: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const candidates = configCandidates(explicit, env);
  const mustExist = Boolean(explicit || env.RIGCAM_CONFIG);
  for (const file of candidates) {
    if (existsSync(file)) return { config: readConfigFile(file), file };
  }
  if (mustExist) throw new ConfigError(`config file not found: ${candidates[0]}`, candidates[0] ?? null, ['not found']);
  return { config: parseConfig({}), file: null };
}

/** Absolute recordings root for a config (relative paths resolve against the working directory). */
export function recordingsRoot(config: Config): string {
  return path.resolve(config.recordings_dir ?? path.join(config.data_dir, 'recordings'));
}
