import { Command, InvalidArgumentError } from 'commander';
import { ConfigError, loadConfig, readConfigFile } from '../config/load.ts';
import { createLogger } from '../log/logger.ts';
import { PathError } from '../recording/paths.ts';
import { recordArgsSchema, runRecord } from './record-command.ts';
import { runModule, runServe } from './serve-command.ts';
import { formatIssues } from '../config/load.ts';

const program = new Command();
program.name('rigcam').description('Camera box service for behavioral-science rigs').option('-c, --config <file>', 'config file (YAML)');

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
  .requiredOption('--source <kind>', 'camera source: test | v4l2')
  .option('--device <path>', 'V4L2 device for --source v4l2')
  .requiredOption('--duration <seconds>', 'how long to record', num)
  .option('--session <name>', 'session name (letters, digits, . _ -)')
  .option('--size <WxH>', 'frame size, e.g. 1280x720')
  .option('--fps <n>', 'frame rate', num)
  .option('--data <dir>', 'data directory (database and recordings)')
  .option('--mp4', 'remux to MP4 after stop (verified frame count)')
  .action(async (opts: Record<string, unknown>) => {
    const parsed = recordArgsSchema.safeParse(opts);
    if (!parsed.success) fail(new Error(formatIssues(parsed.error.issues).join('; ')), 2);
    try {
      const { config } = loadConfig(program.opts<{ config?: string }>().config);
      const log = createLogger({ level: process.env.RIGCAM_LOG_LEVEL ?? 'warn', destination: process.stderr });
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
      await runServe(config, log, { demoSeconds });
    } catch (err) {
      fail(err, err instanceof ConfigError ? 2 : 1);
    }
  });

program
  .command('module')
  .description('run as a camera module of a host logger: JSON lines on stdin (commands) and stdout (statuses)')
  .action(async () => {
    try {
      const { config } = loadConfig(program.opts<{ config?: string }>().config);
      // stdout carries the protocol: logs go to stderr.
      const log = createLogger({ level: config.log.level, destination: process.stderr });
      await runModule(config, log);
    } catch (err) {
      fail(err, err instanceof ConfigError ? 2 : 1);
    }
  });

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
