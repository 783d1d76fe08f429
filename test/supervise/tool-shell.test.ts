import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { ToolShell } from '../../src/supervise/tool-shell.ts';
import { repoRoot } from '../helpers/cli.ts';
import { tmpDir } from '../helpers/tmp.ts';

const shells: ToolShell[] = [];
afterEach(() => {
  for (const s of shells.splice(0)) s.close();
});

/** A folder of stand-in tools, and a shell whose tools' PATH is that folder first. */
function setup(tools: Record<string, string>, timeoutMs = 2000): { bin: string; shell: ToolShell } {
  const bin = tmpDir();
  for (const [name, body] of Object.entries(tools)) writeFileSync(path.join(bin, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  const shell = new ToolShell({ env: { PATH: `${bin}:/usr/bin:/bin` }, timeoutMs });
  shells.push(shell);
  return { bin, shell };
}

const alive = (pid: number): boolean => existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('ToolShell: tools run by a long-lived sh, not forked from this process', () => {
  it('gives stdout byte for byte (with or without a final newline) and the exit status; a missing tool is not found', async () => {
    const { shell } = setup({
      plain: 'printf "a\\nb\\n"',
      nonl: 'printf "no newline"; exit 3',
      empty: 'exit 0',
    });
    assert.deepEqual(await shell.run('plain', []), { found: true, exitCode: 0, stdout: 'a\nb\n', stderr: '' });
    assert.deepEqual(await shell.run('nonl', []), { found: true, exitCode: 3, stdout: 'no newline', stderr: '' });
    assert.deepEqual(await shell.run('empty', []), { found: true, exitCode: 0, stdout: '', stderr: '' });
    const missing = await shell.run('no-such-tool', ['x']);
    assert.equal(missing.found, false);
    assert.equal(missing.exitCode, 127);
  });

  it('passes hostile arguments literally (quotes, $(), backticks, ;, globs, spaces) and refuses a newline', async () => {
    const { bin, shell } = setup({ args: 'for a in "$@"; do printf "[%s]\\n" "$a"; done' });
    const marker = path.join(bin, 'pwned');
    const hostile = [`it's`, `"dq"`, `$(touch ${marker})`, `\`touch ${marker}\``, `a; touch ${marker}`, '*', '  two  spaces ', '', '\\', '$HOME'];
    const r = await shell.run('args', hostile);
    assert.equal(r.exitCode, 0);
    assert.equal(r.stdout, hostile.map((a) => `[${a}]\n`).join(''));
    assert.equal(existsSync(marker), false, 'an argument was executed');
    await assert.rejects(shell.run('args', ['a\nb']), /newline/);
    // The refusal changed nothing: the shell still answers.
    assert.equal((await shell.run('args', ['ok'])).stdout, '[ok]\n');
  });

  it('an output that imitates the end marker does not end the answer early', async () => {
    const { shell } = setup({ fake: 'printf "\\n0000000000000000 0\\nafter\\n"' });
    assert.equal((await shell.run('fake', [])).stdout, '\n0000000000000000 0\nafter\n');
  });

  it('the tools are children of the shell: this process forks only the shell, once', async () => {
    const log = path.join(tmpDir(), 'who.log');
    // The tool's parent, and that one's parent, read while both are alive.
    const { shell } = setup({ who: `echo "$PPID $(cut -d' ' -f4 /proc/$PPID/stat)" >> ${JSON.stringify(log)}` });
    shell.start();
    const pid = shell.pid;
    assert.ok(pid);
    for (let i = 0; i < 3; i++) assert.equal((await shell.run('who', [])).exitCode, 0);
    assert.equal(shell.pid, pid, 'one shell for every request');
    const lines = readFileSync(log, 'utf8').trim().split('\n');
    assert.equal(lines.length, 3);
    for (const line of lines) {
      const [parent, grandparent] = line.split(' ').map(Number);
      assert.notEqual(parent, process.pid, `a tool was forked by the Node process: ${line}`);
      // Its parent is the shell, or \`timeout\` run by the shell.
      assert.ok(parent === pid || grandparent === pid, `not under the shell ${pid}: ${line}`);
    }
  });

  it('a tool that hangs is killed after the timeout (124), and the next request is served', async () => {
    const { shell } = setup({ hang: 'exec sleep 30', quick: 'echo fine' }, 300);
    const t0 = Date.now();
    const r = await shell.run('hang', []);
    assert.equal(r.exitCode, 124);
    assert.ok(Date.now() - t0 < 2500, `took ${Date.now() - t0} ms`);
    assert.equal((await shell.run('quick', [])).stdout, 'fine\n');
  });

  it('requests made together are answered in order, each with its own output', async () => {
    const { shell } = setup({ echoarg: 'sleep 0.05; echo "$1"' });
    const rs = await Promise.all(['1', '2', '3', '4'].map((a) => shell.run('echoarg', [a])));
    assert.deepEqual(rs.map((r) => r.stdout), ['1\n', '2\n', '3\n', '4\n']);
  });

  it('a shell killed from outside fails the request in flight and is replaced for the next one', async () => {
    const { shell } = setup({ slow: 'sleep 1; echo late', quick: 'echo fine' });
    shell.start();
    const first = shell.pid!;
    const inFlight = shell.run('slow', []);
    await new Promise((r) => setTimeout(r, 200));
    process.kill(first, 'SIGKILL');
    const r = await inFlight;
    assert.notEqual(r.exitCode, 0);
    assert.equal(r.stdout, '');
    assert.equal((await shell.run('quick', [])).stdout, 'fine\n');
    assert.ok(shell.pid && shell.pid !== first);
  });

  it('close() stops the shell; a request after it is refused as not found', async () => {
    const { shell } = setup({ quick: 'echo fine' });
    shell.start();
    const pid = shell.pid!;
    shell.close();
    await until(() => !alive(pid));
    const r = await shell.run('quick', []);
    assert.equal(r.found, false);
  });

  it('an idle shell does not keep its process alive, and exits when that process is killed', async () => {
    const script = `import { ToolShell } from ${JSON.stringify(path.join(repoRoot, 'src/supervise/tool-shell.ts'))};
const s = new ToolShell({ timeoutMs: 2000 });
s.start();
const r = await s.run('true', []);
console.log(JSON.stringify({ pid: s.pid, code: r.exitCode }));
if (process.argv[2] === 'hang') setInterval(() => {}, 1000);`;
    const file = path.join(tmpDir(), 'idle.mts');
    writeFileSync(file, script);
    const run = (mode: string): Promise<{ out: string; code: number | null; kill: () => void; line: Promise<string> }> =>
      new Promise((resolve) => {
        const c = spawn(process.execPath, ['--import', 'tsx', file, mode], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        let gotLine: (l: string) => void = () => undefined;
        const line = new Promise<string>((r) => (gotLine = r));
        c.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('\n')) gotLine(out.split('\n')[0]!);
        });
        if (mode === 'hang') resolve({ out: '', code: null, kill: () => c.kill('SIGKILL'), line });
        c.on('exit', (code) => resolve({ out, code, kill: () => undefined, line }));
      });
    // Without close(): the process ends by itself once the request is answered.
    const done = await run('exit');
    assert.equal(done.code, 0);
    const first = JSON.parse(done.out.trim()) as { pid: number; code: number };
    assert.equal(first.code, 0);
    await until(() => !alive(first.pid));
    // Killed outright: its shell sees stdin close and exits too.
    const hung = await run('hang');
    const info = JSON.parse(await hung.line) as { pid: number };
    assert.ok(alive(info.pid));
    hung.kill();
    await until(() => !alive(info.pid));
  });
});
