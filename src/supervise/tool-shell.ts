import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { whichSync } from './child-supervisor.ts';

/** What one tool run gave (the shape of cameras/run-tool's ToolResult; stderr is not collected here). */
export interface ShellToolResult {
  /** False when the shell could not find the executable (exit status 127). */
  found: boolean;
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface ToolShellOptions {
  /** The tools' environment (their PATH finds them); default this process's. */
  env?: NodeJS.ProcessEnv;
  /** A tool still running after this is killed (coreutils `timeout`), and reported with exit status 124. */
  timeoutMs: number;
}

// One request per line: "<token> <quoted command line>". The tool's stdout is followed by "\n<token> <status>\n";
// the token is random per request, so no output can fake the end of another's.
const SCRIPT = `while IFS= read -r line; do
  token=\${line%% *}
  eval "\${line#* }" </dev/null 2>/dev/null
  printf '\\n%s %s\\n' "$token" "$?"
done`;

const quote = (s: string): string => `'${s.replaceAll("'", `'\\''`)}'`;

interface Pending {
  token: string;
  resolve: (r: ShellToolResult) => void;
  timer: NodeJS.Timeout;
}

/**
 * A long-lived `/bin/sh` that runs short tools (chronyc, timedatectl, sqlite3) for the service. A fork copies the forking
 * process's page tables on the calling thread: execFile from rigcam's Node process held its event loop 5 ms at
 * 45 MiB RSS and 13 ms at 145 MiB on the reference VM (issue 17), so the time-sync read after a trial's start
 * delayed its recording_started by two forks and the arrival stamps of the triggers that came meanwhile. The
 * shell is small and forks the tools instead; rigcam forks only the shell, once (again only after it died).
 *
 * Requests run one at a time, in order. A tool that overruns its time limit is killed by `timeout`; a shell that has
 * not answered 2 s after that is killed, the request reported as timed out (124), and a new shell started for the
 * next one. The shell exits by itself when rigcam dies (its stdin closes).
 */
export class ToolShell {
  private child: ChildProcessWithoutNullStreams | null = null;
  private out = '';
  private pending: Pending | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  private readonly timeoutCmd = whichSync('timeout', process.env.PATH ?? '/usr/bin:/bin');

  constructor(private readonly o: ToolShellOptions) {}

  /** Start the shell now (at service start, while the process is small), not at the first request. */
  start(): void {
    if (!this.child && !this.closed) this.spawnShell();
  }

  /** The shell's pid (tests: the tools' parent), or null while none runs. */
  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  /**
   * Run `command args…` (looked up on the tools' PATH), killed after `timeoutMs` (default the shell's); never
   * rejects except for an argument that cannot be sent.
   */
  run(command: string, args: readonly string[], timeoutMs = this.o.timeoutMs): Promise<ShellToolResult> {
    for (const a of [command, ...args]) if (/[\n\0]/.test(a)) return Promise.reject(new Error('a tool argument holds a newline or NUL'));
    const next = this.queue.then(() => this.runNow(command, args, timeoutMs));
    this.queue = next.catch(() => undefined);
    return next;
  }

  close(): void {
    this.closed = true;
    this.kill();
  }

  private runNow(command: string, args: readonly string[], timeoutMs: number): Promise<ShellToolResult> {
    if (this.closed) return Promise.resolve({ found: false, exitCode: 127, stdout: '', stderr: 'tool shell closed' });
    const child = this.child ?? this.spawnShell();
    const token = randomBytes(8).toString('hex');
    const secs = Math.max(0.1, timeoutMs / 1000);
    const line = [...(this.timeoutCmd ? [quote(this.timeoutCmd), '-k', '1', String(secs)] : []), quote(command), ...args.map(quote)].join(' ');
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.finish({ found: true, exitCode: 124, stdout: '', stderr: 'the tool shell did not answer' });
        this.kill();
      }, timeoutMs + 2000);
      this.pending = { token, resolve, timer };
      this.out = '';
      child.stdin.write(`${token} ${line}\n`);
    });
  }

  private spawnShell(): ChildProcessWithoutNullStreams {
    const child = spawn('/bin/sh', ['-c', SCRIPT], { env: this.o.env ?? process.env, stdio: 'pipe' });
    this.child = child;
    child.stdin.on('error', () => undefined); // EPIPE after the shell died: its exit says so
    child.stderr.resume();
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => this.onData(d));
    child.on('error', () => this.onExit(child));
    child.on('exit', () => this.onExit(child));
    // Idle, the shell must not keep rigcam (or a test) alive; a request in flight holds its own timer.
    child.unref();
    // stdio 'pipe' streams are net.Sockets (typed as plain streams).
    for (const s of [child.stdin, child.stdout, child.stderr]) (s as unknown as Socket).unref();
    return child;
  }

  private onData(d: string): void {
    const p = this.pending;
    if (!p) return;
    this.out += d;
    const m = new RegExp(`\\n${p.token} (\\d+)\\n`).exec(this.out);
    if (!m) return;
    const code = Number(m[1]);
    this.finish({ found: code !== 127, exitCode: code, stdout: this.out.slice(0, m.index), stderr: '' });
  }

  private onExit(child: ChildProcessWithoutNullStreams): void {
    if (this.child !== child) return;
    this.child = null;
    this.finish({ found: true, exitCode: 1, stdout: '', stderr: 'the tool shell exited' });
  }

  private finish(r: ShellToolResult): void {
    const p = this.pending;
    if (!p) return;
    this.pending = null;
    this.out = '';
    clearTimeout(p.timer);
    p.resolve(r);
  }

  private kill(): void {
    const child = this.child;
    this.child = null;
    if (child) {
      child.stdin.end();
      child.kill('SIGKILL');
    }
    this.finish({ found: true, exitCode: 1, stdout: '', stderr: 'the tool shell was stopped' });
  }
}
