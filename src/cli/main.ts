import { Command, InvalidArgumentError } from 'commander';
import { createWriteStream } from 'node:fs';
import { ConfigError, loadConfig, parseConfig, readConfigFile, recordingsRoot } from '../config/load.ts';
import { createLogger } from '../log/logger.ts';
import { PathError } from '../recording/paths.ts';
import { packageVersion } from '../version.ts';
import { formatIssues } from '../config/load.ts';
import path from 'node:path';
import type { ProbeOptions } from '../cameras/probe-command.ts';
import type { Store } from '../storage/store.ts';
import { keepMallocTuningToThisProcess } from '../supervise/child-env.ts';
// The commands' modules load on use: `rigcam module` must say `ready` fast (the host waits 10 s).

// Before any command can start a child process.
keepMallocTuningToThisProcess();

const program = new Command();
program
  .name('rigcam')
  .description('Camera box service for behavioral-science rigs')
  .version(packageVersion(), '-V, --version', 'print the version')
  .option('-c, --config <file>', 'config file (YAML)');

function num(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new InvalidArgumentError(`"${v}" is not a number`);
  return n;
}

/** Print an error the user can act on and exit non-zero (no stack traces for expected failures). */
function fail(err: unknown, code = 1): never {
  const msg = err instanceof Error ? err.message : String(err);
  process.stderr.write(`rigcam: ${msg}\n`);
  process.exit(code);
}

program
  .command('record')
  .description('record one trial and print a JSON summary')
  .requiredOption('--source <kind>', 'camera source: test | v4l2 | rpicam')
  .option('--device <path>', 'V4L2 device (--source v4l2) or camera index (--source rpicam)')
  .requiredOption('--duration <seconds>', 'how long to record', num)
  .option('--session <name>', 'session name (letters, digits, . _ -)')
  .option('--size <WxH>', 'frame size, e.g. 1280x720')
  .option('--fps <n>', 'frame rate', num)
  .option('--data <dir>', 'data directory (database and recordings)')
  .option('--mp4', 'remux to MP4 after stop (verified frame count)')
  .action(async (opts: Record<string, unknown>) => {
    const { recordArgsSchema, runRecord } = await import('./record-command.ts');
    const parsed = recordArgsSchema.safeParse(opts);
    if (!parsed.success) fail(new Error(formatIssues(parsed.error.issues).join('; ')), 2);
    try {
      const { config } = loadConfig(program.opts<{ config?: string }>().config);
      const log = createLogger({ level: process.env.RIGCAM_LOG_LEVEL ?? 'warn', fd: 2 });
      const result = await runRecord(parsed.data, config, log);
      process.stdout.write(JSON.stringify(result) + '\n');
    } catch (err) {
      fail(err, err instanceof ConfigError || err instanceof PathError ? 2 : 1);
    }
  });

program
  .command('serve')
  .description('run the box: cameras, trials, API and web page')
  .option('--demo [seconds]', 'record one demo trial once the cameras are ready (default 10 s)')
  .action(async (opts: { demo?: string | boolean }) => {
    const demoSeconds = opts.demo === undefined || opts.demo === false ? undefined : opts.demo === true ? 10 : num(opts.demo);
    try {
      const { config, file } = loadConfig(program.opts<{ config?: string }>().config);
      const log = createLogger({ level: config.log.level });
      log.info({ config: file ?? '(defaults: one test camera)' }, 'rigcam starting');
      const { runServe } = await import('./serve-command.ts');
      await runServe(config, log, { demoSeconds });
    } catch (err) {
      fail(err, err instanceof ConfigError ? 2 : 1);
    }
  });

program
  .command('module')
  .description('run as a camera module of a host logger (RPi_Logger): JSON lines on stdin (commands) and stdout (statuses)')
  // The host's launch flags (RPi_Logger cli/common.py; README "Running under RPi_Logger").
  .option('--output-dir <dir>', "the host's output directory: the recordings root")
  .option('--session-prefix <prefix>', 'default session prefix')
  .option('--log-level <level>', 'critical | error | warning | info | debug')
  .option('--log-file <file>', 'write logs to this file instead of stderr')
  .option('--console', 'accepted (logs never go to stdout)')
  .option('--no-console', 'accepted (logs never go to stdout)')
  .option('--auto-start-recording', 'not supported: rigcam records on the host record command')
  .option('--no-auto-start-recording', 'accepted')
  .option('--enable-commands', 'accepted (commands are always read from stdin)')
  .option('--window-geometry <WxH+X+Y>', 'accepted (no window)')
  .option('--instance-id <id>', "the host's instance id: this process's database is data_dir/modules/<id>/rigcam.db")
  .option('--config-path <file>', "the host's per-instance module config (accepted; rigcam's settings are its YAML)")
  .option('--camera-index <n>', 'serve CSI camera N: assigned at start as picam:N')
  .option('--platform <name>', 'accepted')
  .option('--architecture <name>', 'accepted')
  .option('--is-raspberry-pi', 'accepted')
  .option('--mode <mode>', 'headless (the only mode)')
  .action(async (opts: Record<string, unknown>) => {
    // Light imports only until `ready` is out: the host gives a module 10 s to say it.
    const { moduleConfig, moduleDatabase, moduleFlagsSchema, moduleLogLevel, readyLine } = await import('../runtime/module-mode-launch.ts');
    const flags = moduleFlagsSchema.safeParse(opts);
    if (!flags.success) fail(new Error(`module: ${formatIssues(flags.error.issues).map((m) => `--${m.replace(/^([a-zA-Z]+)/, (k) => k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`))}`).join('; ')}`), 2);
    let config;
    try {
      config = parseConfig(moduleConfig(loadConfig(program.opts<{ config?: string }>().config).config, flags.data));
    } catch (err) {
      fail(err, 2);
    }
    process.stdout.write(readyLine(recordingsRoot(config)));
    try {
      // stdout carries the protocol: logs go to stderr (or --log-file).
      const destination = flags.data.logFile ? createWriteStream(flags.data.logFile, { flags: 'a' }) : undefined;
      const log = createLogger({ level: moduleLogLevel(flags.data, config.log.level), destination, fd: 2 });
      const { runModule } = await import('./serve-command.ts');
      await runModule(config, log, { dbFile: moduleDatabase(config.data_dir, flags.data), cameraIndex: flags.data.cameraIndex });
    } catch (err) {
      fail(err, err instanceof ConfigError ? 2 : 1);
    }
  });

program
  .command('probe')
  .description('probe a camera: modes, default record/preview mode, controls')
  .option('--device <path>', 'V4L2 device to probe live (runs v4l2-ctl)')
  .option('--json', 'print JSON (shape in the README)')
  .option('--save-dump <dir>', 'with --device: also save the raw v4l2-ctl outputs for a bug report')
  .option('--from-dump <dir>', 'probe from a saved dump instead of a camera')
  .option('--rpicam-list <file>', 'parse a saved `rpicam-hello --list-cameras` output')
  .option('--target-fps <n>', 'frame rate the default record mode must reach', num)
  .action(async (opts: ProbeOptions) => {
    const { runProbe } = await import('../cameras/probe-command.ts');
    const r = await runProbe(opts);
    (r.exitCode === 0 ? process.stdout : process.stderr).write(r.output);
    process.exitCode = r.exitCode;
  });

program
  .command('doctor')
  .description('check this box: ffmpeg and encoders, camera tools, cameras, GPIO tools, clock sync, disk, groups')
  .option('--save', 'also write the report to <data_dir>/doctor.txt (replaced atomically; first boot does this)')
  .action(async (opts: { save?: boolean }) => {
    let dataDir: string | undefined;
    try {
      dataDir = loadConfig(program.opts<{ config?: string }>().config).config.data_dir;
    } catch (err) {
      process.stdout.write(`FAIL config: ${(err as Error).message} — fix: rigcam config check FILE\n`);
    }
    const { runDoctor } = await import('./doctor.ts');
    const report = await runDoctor({ dataDir });
    process.stdout.write(report.lines.join('\n') + '\n');
    process.exitCode = report.ok ? 0 : 1;
    if (opts.save) {
      const { saveDoctorReport } = await import('./doctor.ts');
      try {
        process.stdout.write(`report written to ${saveDoctorReport(report, dataDir ?? process.cwd())}\n`);
      } catch (err) {
        process.stderr.write(`rigcam: doctor report not written: ${(err as Error).message}\n`);
        process.exitCode = 1;
      }
    }
  });

program
  .command('timing')
  .description('print the per-frame times a .ts or .mp4 carries inside it (CSV: frame_index,capture_us,wall_us,pts)')
  .argument('<file>', 'video file (.ts or .mp4)')
  .option('--csv <out>', 'write the CSV to a new file instead of stdout')
  .action(async (file: string, opts: { csv?: string }) => {
    const { runTiming, timingArgsSchema } = await import('./timing-command.ts');
    const parsed = timingArgsSchema.safeParse({ file, ...opts });
    if (!parsed.success) fail(new Error(formatIssues(parsed.error.issues).join('; ')), 2);
    // `rigcam timing F | head` closes the pipe early: that is not an error.
    process.stdout.on('error', (err: NodeJS.ErrnoException) => (err.code === 'EPIPE' ? process.exit(0) : fail(err)));
    try {
      const r = await runTiming(parsed.data, (s) => process.stdout.write(s));
      if (r.withoutSei > 0) {
        process.stderr.write(`rigcam: ${r.withoutSei} of ${r.frames} frames carry no rigcam timing (their times are empty)\n`);
        process.exitCode = 1;
      }
    } catch (err) {
      fail(err);
    }
  });

program
  .command('verify')
  .description('check that a recording\'s file, timing SEI, CSV and database agree frame by frame')
  .argument('<recording>', 'recording id, or a .ts / .mp4 file')
  .option('--data <dir>', 'data directory (database and recordings)')
  .action(async (target: string, opts: { data?: string }) => {
    const { runVerify, verifyArgsSchema } = await import('./verify-command.ts');
    const parsed = verifyArgsSchema.safeParse({ target, ...opts });
    if (!parsed.success) fail(new Error(formatIssues(parsed.error.issues).join('; ')), 2);
    try {
      const config = parsed.data.data ? parseConfig({}) : loadConfig(program.opts<{ config?: string }>().config).config;
      const r = await runVerify(parsed.data, config);
      process.stdout.write(r.lines.join('\n') + '\n');
      process.exitCode = r.ok ? 0 : 1;
    } catch (err) {
      fail(err, err instanceof ConfigError ? 2 : 1);
    }
  });

program
  .command('align')
  .description('align boxes on one clock by their sync pulses: offset and drift per box, every frame on the reference clock')
  .argument('<inputs...>', "boxes' databases (rigcam.db) or exported edge CSVs, each [NAME=]PATH")
  .option('--pulses <file>', "an acquisition system's pulse log: CSV of times in seconds")
  .option('--reference <name>', 'the clock to align to (default: the pulse log, else the first input)')
  .option('--line <n>', 'the sync line, when a box has several')
  .option('--direction <in|out>', "in: the box's sync input (kernel times, default); out: the train it emitted")
  .option('--tolerance-ms <ms>', 'intervals agree within this (default 3)')
  .option('--window <n>', 'consecutive intervals that must agree (default 5)')
  .option('--min-pulses <n>', 'fewer matched pulses are refused (default 10)')
  .option('--root <NAME=DIR>', "a box's recordings root (default: recordings beside its database)", (v: string, prev: string[]) => [...prev, v], [] as string[])
  .option('--residuals <file>', 'write every matched pulse and its residual to this new CSV')
  .action(async (inputs: string[], opts: Record<string, unknown>) => {
    const { alignArgsSchema, runAlign } = await import('../sync/align-run.ts');
    const { AlignError } = await import('../sync/align.ts');
    const parsed = alignArgsSchema.safeParse({ inputs, ...opts });
    if (!parsed.success) fail(new Error(`align: ${formatIssues(parsed.error.issues).join('; ')}`), 2);
    try {
      process.stdout.write(JSON.stringify(runAlign(parsed.data), null, 1) + '\n');
    } catch (err) {
      fail(err instanceof AlignError ? new Error(`align refused: ${err.message}`) : err, 1);
    }
  });

const recordingsCmd = program.command('recordings').description('recordings in the database');
recordingsCmd
  .command('list')
  .description('list recordings (newest first)')
  .option('--json', 'print JSON')
  .action(async (opts: { json?: boolean }) => {
    await withStore((store) => {
      const rows = store.listRecordings();
      if (opts.json) process.stdout.write(JSON.stringify(rows) + '\n');
      else
        for (const r of rows)
          process.stdout.write(
            `${String(r.id).padStart(5)}  ${String(r.state).padEnd(11)} ${String(r.frame_count).padStart(7)} frames  ${r.offloaded_at ? 'offloaded ' : ''}${r.deleted_at ? 'deleted ' : ''}${r.path}\n`,
          );
    });
  });
recordingsCmd
  .command('offloaded')
  .description('mark recordings as copied off the box: only these may ever be deleted by the retention policy')
  .argument('<ids...>', 'recording ids')
  .action(async (ids: string[]) => {
    const nums = ids.map((i) => Number(i));
    if (nums.some((n) => !Number.isInteger(n) || n < 1)) fail(new Error('recording ids are positive integers'), 2);
    await withStore((store) => {
      const n = store.markOffloaded(nums);
      process.stdout.write(`marked ${n} of ${nums.length} recording(s) as offloaded\n`);
    });
  });

/** Open the configured database for a one-off CLI command. */
async function withStore(fn: (store: Store) => void): Promise<void> {
  const { openStore } = await import('../storage/open-store.ts');
  try {
    const { config } = loadConfig(program.opts<{ config?: string }>().config);
    const store = openStore(path.resolve(config.data_dir, 'rigcam.db'));
    try {
      fn(store);
    } finally {
      store.close();
    }
  } catch (err) {
    fail(err, err instanceof ConfigError ? 2 : 1);
  }
}

const configCmd = program.command('config').description('configuration tools');
configCmd
  .command('check')
  .argument('<file>', 'config file to check')
  .description('validate a config file: prints OK or each problem with its key path')
  .action((file: string) => {
    try {
      const cfg = readConfigFile(file);
      process.stdout.write(`OK ${file}: ${cfg.cameras.length} camera(s): ${cfg.cameras.map((c) => `${c.id} (${c.source})`).join(', ')}\n`);
    } catch (err) {
      fail(err, 2);
    }
  });

await program.parseAsync(process.argv);
