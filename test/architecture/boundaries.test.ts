import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { checkBoundaries, importSpecifiers, sourceFiles, type Rule } from './boundaries.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * Who may import what in src/. One row per boundary; `why` is what a violation reports. Add rows here
 * (e.g. the runtime's and the supervisor's) as concepts get one owner.
 */
export const RULES: Rule[] = [
  {
    why: 'storage is below recording, runtime and the transports: it imports none of them (no cycles)',
    files: ['src/storage/'],
    forbidImports: ['src/recording/', 'src/runtime/', 'src/api/', 'src/cli/', 'src/sources/', 'src/triggers/', 'src/disk/'],
  },
  {
    why: 'only src/storage talks to SQLite (all SQL in the store)',
    files: ['src/'],
    except: ['src/storage/'],
    forbidImports: ['better-sqlite3'],
  },
  {
    why: 'src/storage/database.ts (the connection) is used by the store and its own modules only',
    files: ['src/'],
    except: ['src/storage/'],
    forbidImports: ['src/storage/database.ts'],
  },
  {
    why: 'the frame row and CSV format (src/timing) are a leaf both recording and storage use',
    files: ['src/timing/'],
    forbidImports: ['src/'],
    allowImports: ['src/timing/'],
  },
  {
    why: 'src/clock.ts is a leaf: every module may use it',
    files: ['src/clock.ts'],
    forbidImports: ['src/'],
  },
  {
    why: 'only src/clock.ts reads the monotonic clock (one owner of clock reads)',
    files: ['src/'],
    except: ['src/clock.ts'],
    forbidCode: /\bprocess\.hrtime\s*[.(]/,
  },
  {
    why: 'src/cli is the entry point: nothing imports it',
    files: ['src/'],
    except: ['src/cli/'],
    forbidImports: ['src/cli/'],
  },
  {
    why: 'the web page is static files served by the API, not a module',
    files: ['src/'],
    except: ['src/web/'],
    forbidImports: ['src/web/'],
  },
  // ---- the runtime (command bus, trial controller, camera registry, extensions) ----
  {
    why: 'only the camera registry creates camera runtimes (one owner of the per-camera state)',
    files: ['src/'],
    except: ['src/runtime/camera-registry.ts'],
    forbidCode: /\bnew CameraRuntime\s*\(/,
  },
  {
    why: 'the runtime knows no transport: api, cli and service plug in as extensions',
    files: ['src/runtime/'],
    forbidImports: ['src/api/', 'src/service/'], // and src/cli, like everyone (below)
  },
  {
    why: 'the layers under the runtime never reach up into it',
    files: ['src/pipeline/', 'src/recording/', 'src/storage/', 'src/disk/', 'src/sources/', 'src/cameras/', 'src/supervise/', 'src/timing/'],
    forbidImports: ['src/runtime/'],
  },
  {
    why: "the runtime's internals are its own: others use the box, its statuses, errors and command types",
    files: ['src/'],
    except: ['src/runtime/'],
    forbidImports: [
      'src/runtime/command-bus.ts',
      'src/runtime/command-table.ts',
      'src/runtime/trial-controller.ts',
      'src/runtime/camera-registry.ts',
      'src/runtime/camera-setup.ts',
      'src/runtime/extensions/journal.ts',
      'src/runtime/extensions/disk.ts',
      'src/runtime/extensions/telemetry.ts',
      'src/runtime/extensions/remux.ts',
    ],
  },
  // ---- child processes ----
  {
    why: 'long-running children are spawned only by the one supervisor (src/supervise)',
    files: ['src/'],
    // sd-notify's helper, and file-frames' ffmpeg reading an .mp4 once (bounded by the file, owned by its caller)
    except: ['src/supervise/', 'src/service/sd-notify.ts', 'src/pipeline/file-frames.ts'],
    forbidCode: /\bspawn\s*\(/,
  },
  {
    why: 'the supervisor is a leaf: node built-ins and the logger only',
    files: ['src/supervise/'],
    forbidImports: ['src/'],
    allowImports: ['src/supervise/', 'src/log/'],
  },
  {
    why: 'one back-off type',
    files: ['src/'],
    except: ['src/supervise/backoff.ts'],
    forbidCode: /\bclass\s+\w*Backoff\b/,
  },
  {
    why: 'the API serves what the pipeline makes: it runs no process of its own',
    files: ['src/api/'],
    forbidImports: ['node:child_process'],
  },
];

describe('import boundaries of src/', () => {
  it('every rule holds', () => {
    const files = sourceFiles(repo, 'src');
    assert.ok(files.length > 50, `${files.length} files read`);
    const violations = checkBoundaries(files, RULES);
    assert.deepEqual(violations, [], violations.map((v) => `${v.file} → ${v.found}: ${v.why}`).join('\n'));
  });

  it('reads every form of import', () => {
    const text = [
      "import a from './a.ts';",
      "import type { B } from '../b.ts';",
      'import {\n  c,\n  type D,\n} from "../c/d.ts";',
      "import './side-effect.ts';",
      "export { e } from './e.ts';",
      "export * from './f.ts';",
      "const g = await import('./g.ts');",
      "import Database from 'better-sqlite3';",
      "// import { no } from './commented.ts';",
      '/* import { no } from "./block.ts"; */',
      "const url = 'http://x/y'; import { h } from './h.ts';",
    ].join('\n');
    assert.deepEqual(importSpecifiers(text).sort(), ['../b.ts', '../c/d.ts', './a.ts', './e.ts', './f.ts', './g.ts', './h.ts', './side-effect.ts', 'better-sqlite3'].sort());
  });

  it('reports a broken rule: the checker on synthetic files', () => {
    const files = [
      { path: 'src/storage/x.ts', text: "import type { FrameRow } from '../recording/frame-row.ts';\nimport { Store } from './store.ts';" },
      { path: 'src/runtime/y.ts', text: "import Database from 'better-sqlite3';\nconst t = process.hrtime.bigint();\nimport('../cli/main.ts');" },
      { path: 'src/clock.ts', text: 'export const now = () => process.hrtime.bigint();' },
      { path: 'src/api/z.ts', text: "import { monoNowUs } from '../clock.ts'; // process.hrtime is the clock\nimport { sqlite } from 'better-sqlite3-helper';" },
    ];
    const found = checkBoundaries(files, RULES).map((v) => `${v.file} → ${v.found}`);
    assert.deepEqual(found, [
      'src/storage/x.ts → src/recording/frame-row.ts',
      'src/runtime/y.ts → better-sqlite3',
      'src/runtime/y.ts → process.hrtime.',
      'src/runtime/y.ts → src/cli/main.ts',
    ]);
  });
});
