import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * The import-boundary checker: which module may import what, and which code only one module may contain.
 * Rules are data (see RULES in boundaries.test.ts): add a row to guard a new boundary.
 */

/** One rule. Paths are repository-relative with forward slashes; a prefix ending in / is a folder. */
export interface Rule {
  /** What the rule protects, shown with each violation. */
  why: string;
  /** Files the rule applies to (path prefixes). */
  files: string[];
  /** Files exempt from it (path prefixes), e.g. the owner of a concept. */
  except?: string[];
  /** Imports these files may not make: repository path prefixes (src/recording/) or package names (better-sqlite3). */
  forbidImports?: string[];
  /** Imports exempt from forbidImports (path prefixes or packages), e.g. a folder's own files. */
  allowImports?: string[];
  /** Code these files may not contain (comments ignored), e.g. /process\.hrtime\s*[.(]/. */
  forbidCode?: RegExp;
}

export interface SourceFile {
  path: string;
  text: string;
}

export interface Violation {
  file: string;
  /** The import's target (resolved path or package), or the code matched. */
  found: string;
  why: string;
}

/** Comments removed (a // only counts at a line's start or after whitespace, so URLs in strings stay). */
function stripComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, ' ').replace(/(^|\s)\/\/.*$/gm, '$1');
}

/** Every module specifier a file imports: static imports, `export ... from`, side-effect and dynamic imports. */
export function importSpecifiers(text: string): string[] {
  const code = stripComments(text);
  const out: string[] = [];
  const staticRe = /(?:^|[;\s])(?:import|export)\s+(?:type\s+)?(?:[\w*{}\s,$]+?\s+from\s+)?['"]([^'"\n]+)['"]/g;
  const dynamicRe = /\bimport\(\s*['"]([^'"\n]+)['"]\s*\)/g;
  for (const re of [staticRe, dynamicRe]) for (const m of code.matchAll(re)) out.push(m[1]!);
  return out;
}

/** A specifier as a repository path (relative imports) or a package name (bare ones, `node:` builtins kept as is). */
export function resolveSpecifier(fromFile: string, spec: string): string {
  if (spec.startsWith('.')) return path.posix.normalize(path.posix.join(path.posix.dirname(fromFile), spec));
  if (spec.startsWith('node:')) return spec;
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

const matches = (target: string, prefix: string): boolean => (prefix.endsWith('/') ? target.startsWith(prefix) : target === prefix || target.startsWith(`${prefix}/`));

export function checkBoundaries(files: readonly SourceFile[], rules: readonly Rule[]): Violation[] {
  const out: Violation[] = [];
  for (const f of files) {
    const applicable = rules.filter((r) => r.files.some((p) => f.path.startsWith(p)) && !r.except?.some((p) => f.path.startsWith(p)));
    if (!applicable.length) continue;
    const targets = importSpecifiers(f.text).map((s) => resolveSpecifier(f.path, s));
    for (const r of applicable) {
      for (const t of targets)
        if (r.forbidImports?.some((p) => matches(t, p)) && !r.allowImports?.some((p) => matches(t, p))) out.push({ file: f.path, found: t, why: r.why });
      const code = r.forbidCode ? stripComments(f.text).match(r.forbidCode) : null;
      if (code) out.push({ file: f.path, found: code[0], why: r.why });
    }
  }
  return out;
}

/** Every .ts/.js file under `dir` of `repo`, with repository-relative paths. */
export function sourceFiles(repo: string, dir: string): SourceFile[] {
  const out: SourceFile[] = [];
  for (const e of readdirSync(path.join(repo, dir), { withFileTypes: true, recursive: true })) {
    if (!e.isFile() || !/\.(ts|js|mjs)$/.test(e.name)) continue;
    const abs = path.join(e.parentPath, e.name);
    out.push({ path: path.relative(repo, abs).split(path.sep).join('/'), text: readFileSync(abs, 'utf8') });
  }
  return out.sort((a, b) => a.path.localeCompare(b.path));
}
