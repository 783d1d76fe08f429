import { execFile } from 'node:child_process';
import type { GpioFault } from './gpio-hardware.ts';
import { parseGpiodetect, pickHeaderChip } from './gpio-chips.ts';
import { classifyGpiodError } from './gpiod-errors.ts';
import { parseGpiodVersion, type GpiodVersion } from './gpiod-version.ts';

/** A failure of a libgpiod tool, named so a status event can say what to fix. */
export class GpiodToolError extends Error {
  constructor(
    readonly fault: GpioFault,
    message: string,
  ) {
    super(message);
    this.name = 'GpiodToolError';
  }
}

export type GpiodTool = 'gpiomon' | 'gpioset' | 'gpiodetect';

/**
 * Runs the one-shot libgpiod tools found on PATH (env is passed to every child, so tests
 * can put stand-ins first). Version detection and chip resolution are cached once they succeed.
 */
export class GpiodTools {
  private version?: Promise<GpiodVersion>;
  private headerChip?: Promise<string>;

  constructor(readonly env: NodeJS.ProcessEnv = process.env) {}

  /** Shared by every caller; forgotten when it fails, so the next call asks again. */
  detectVersion(): Promise<GpiodVersion> {
    this.version ??= this.run('gpiomon', ['--version']).then((out) => {
      const version = parseGpiodVersion(out);
      if (!version) {
        throw new GpiodToolError('unsupported_version', `gpiomon --version: not libgpiod 1.x or 2.x: ${out.split('\n', 1)[0]}`);
      }
      return version;
    });
    this.version.catch(() => (this.version = undefined));
    return this.version;
  }

  /** `auto` becomes the chip labelled as the header controller in `gpiodetect`. */
  resolveChip(chip: string): Promise<string> {
    if (chip !== 'auto') return Promise.resolve(chip);
    this.headerChip ??= this.run('gpiodetect', []).then((out) => {
      const chips = parseGpiodetect(out);
      const header = pickHeaderChip(chips);
      if (!header) {
        const found = chips.map((c) => `${c.name} [${c.label}]`).join(', ') || 'no chips';
        throw new GpiodToolError('chip_missing', `no Raspberry Pi header gpiochip in gpiodetect (${found})`);
      }
      return header.name;
    });
    this.headerChip.catch(() => (this.headerChip = undefined));
    return this.headerChip;
  }

  private run(tool: GpiodTool, args: string[]): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile(tool, args, { env: this.env, timeout: 5000, encoding: 'utf8' }, (err, stdout, stderr) => {
        if (!err) return resolve(stdout);
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') {
          return reject(new GpiodToolError('tool_missing', `${tool} not found on PATH (install the gpiod package)`));
        }
        const detail = stderr.trim() || err.message;
        reject(new GpiodToolError(classifyGpiodError(detail), `${tool} ${args.join(' ')}: ${detail}`));
      });
    });
  }
}

/** Turns anything thrown while starting a tool into a fault and a message. */
export function describeFailure(err: unknown): { fault: GpioFault; message: string } {
  if (err instanceof GpiodToolError) return { fault: err.fault, message: err.message };
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'ENOENT') return { fault: 'tool_missing', message: `${e.path ?? 'tool'} not found on PATH (install the gpiod package)` };
  return { fault: 'unknown', message: e instanceof Error ? e.message : String(err) };
}
