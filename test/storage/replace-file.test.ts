import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { replaceFile, replaceFileAsync } from '../../src/storage/durable-file.ts';
import { tmpDir } from '../helpers/tmp.ts';

describe('replacing a small file atomically and durably (sync and through the threadpool)', () => {
  for (const [name, replace] of [
    ['replaceFile', async (f: string, t: string) => replaceFile(f, t)],
    ['replaceFileAsync', replaceFileAsync],
  ] as const) {
    it(`${name}: new content, no temporary file left, a crash's leftover temporary file is no obstacle`, async () => {
      const dir = tmpDir();
      const f = path.join(dir, 'session.json');
      writeFileSync(f, 'old');
      writeFileSync(`${f}.tmp-${process.pid}`, 'left by a crash');
      await replace(f, 'new, "quoted" ✓\n');
      assert.equal(readFileSync(f, 'utf8'), 'new, "quoted" ✓\n');
      assert.deepEqual(readdirSync(dir), ['session.json']);
    });

    it(`${name}: a symlink at the temporary name is removed, never written through`, async () => {
      const dir = tmpDir();
      const outside = path.join(tmpDir(), 'victim');
      writeFileSync(outside, 'keep');
      const f = path.join(dir, 'session.json');
      symlinkSync(outside, `${f}.tmp-${process.pid}`);
      await replace(f, 'new');
      assert.equal(readFileSync(outside, 'utf8'), 'keep');
      assert.equal(readFileSync(f, 'utf8'), 'new');
    });

    it(`${name}: a rename that fails leaves what was there and no temporary file`, async () => {
      const dir = tmpDir();
      // The target is a folder with content: the rename over it fails after the temporary file was written.
      const f = path.join(dir, 'session.json');
      mkdirSync(f);
      writeFileSync(path.join(f, 'inside'), 'keep');
      await assert.rejects(replace(f, 'new'));
      assert.deepEqual(readdirSync(dir), ['session.json']);
      assert.equal(readFileSync(path.join(f, 'inside'), 'utf8'), 'keep');
    });
  }

  it('replaceFileAsync streams a document made part by part: byte for byte, across its 64 KiB writes, multi-byte characters included', async () => {
    const dir = tmpDir();
    const f = path.join(dir, 'session.json');
    const parts = Array.from({ length: 300 }, (_, i) => `{"trial":${i},"label":"odour A, \\"q\\" ünïcödé 🐭 ${'x'.repeat(i * 7)}"},\n`);
    let made = 0;
    function* gen(): Generator<string> {
      for (const p of parts) {
        made++;
        yield p;
      }
    }
    await replaceFileAsync(f, gen());
    assert.equal(made, parts.length);
    assert.ok(Buffer.byteLength(parts.join('')) > 3 * 65536, 'several writes');
    assert.equal(readFileSync(f, 'utf8'), parts.join(''));
    assert.deepEqual(readdirSync(dir), ['session.json']);
  });
});
