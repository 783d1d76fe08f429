import { execFileSync } from 'node:child_process';
import { existsSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * Compile src/ plus the given bench entry points to plain JavaScript in `outDir`, the way a release builds dist/
 * (tsconfig.build.json), so CPU figures are those of the shipped service rather than of tsx's on-the-fly loader
 * (which alone costs an idle process several ms of CPU per second). Returns the path of each compiled entry.
 */
export function buildForBench(outDir: string, entries: string[]): string[] {
  // Packages resolve from the output's folder: point its node_modules at the repository's.
  symlinkSync(path.join(REPO, 'node_modules'), path.join(outDir, 'node_modules'), 'dir');
  writeFileSync(path.join(outDir, 'package.json'), JSON.stringify({ type: 'module', private: true }));
  const tsconfig = path.join(outDir, 'tsconfig.json');
  writeFileSync(
    tsconfig,
    JSON.stringify({
      extends: path.join(REPO, 'tsconfig.build.json'),
      compilerOptions: { outDir, rootDir: REPO, noEmit: false, incremental: false },
      include: [path.join(REPO, 'src/**/*.ts'), ...entries.map((e) => path.join(REPO, e))],
    }),
  );
  const tsc = path.join(REPO, 'node_modules/typescript/bin/tsc');
  try {
    execFileSync(process.execPath, [tsc, '-p', tsconfig], { stdio: 'pipe' });
  } catch {
    // Type errors elsewhere in the tree do not stop the emit; a missing output below does.
  }
  return entries.map((e) => {
    const out = path.join(outDir, e.replace(/\.ts$/, '.js'));
    if (!existsSync(out)) throw new Error(`compiling ${e} for the benchmark produced no ${out}`);
    return out;
  });
}
