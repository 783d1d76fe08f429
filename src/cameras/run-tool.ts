import { execFile } from 'node:child_process';

/** Result of running a device tool (v4l2-ctl, udevadm, rpicam-hello, ffmpeg) by name on PATH. */
export interface ToolResult {
  /** False when the executable was not found on PATH (nothing ran). */
  found: boolean;
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface RunToolOptions {
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

/**
 * Run a tool by name (looked up on PATH, so tests can put stand-ins first) and collect its output.
 * Never throws for a non-zero exit: callers decide what a failure means for them.
 */
export function runTool(command: string, args: string[], opts: RunToolOptions = {}): Promise<ToolResult> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      { env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 15_000, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') {
          resolve({ found: false, exitCode: 127, stdout: '', stderr: '' });
          return;
        }
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ found: true, exitCode: code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}
