import type { Server } from 'node:http';
import type { Config } from '../config/schema.ts';
import { recordingsRoot } from '../config/load.ts';
import { logWritten, type Logger } from '../log/logger.ts';
import { BoxRuntime } from '../runtime/box-runtime.ts';
import type { Recovered } from '../storage/open-store.ts';
import { openBoxStore } from './open-box-store.ts';
import { lockDataDir } from '../storage/data-lock.ts';
import { checkListenSafety } from '../api/listen-safety.ts';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { notifyReady, notifyStopping, prepareNotify } from '../service/sd-notify.ts';
import { WatchdogExtension } from '../service/watchdog-extension.ts';
import { monoNowUs } from '../clock.ts';
import { runModuleMode } from '../runtime/module-mode.ts';
import { parseConfig } from '../config/load.ts';
import { createGpioTriggers } from '../triggers/gpio/index.ts';
import { GpioExtension } from '../triggers/gpio/gpio-extension.ts';
import { SyncRecorder } from '../sync/sync-recorder.ts';

export interface ServeOptions {
  /** Record one demo trial of this many seconds once the cameras are ready. */
  demoSeconds?: number;
}

/**
 * `rigcam serve`: the box. Opens the database, assigns every configured camera, serves the API and web page,
 * and on SIGTERM/SIGINT stops any trial (files flushed, fsynced, marked complete) before exiting 0.
 */
export async function runServe(config: Config, log: Logger, opts: ServeOptions = {}): Promise<void> {
  checkListenSafety(config); // refuse a non-loopback address without a token before touching anything
  prepareNotify(); // the helper starts while the database opens and the cameras start, not after
  const root = recordingsRoot(config);
  const dbFile = path.resolve(config.data_dir, 'rigcam.db');
  // Held for the life of the process (the kernel drops it at exit): a second rigcam on this data dir refuses here.
  lockDataDir(config.data_dir);
  const { store, quarantined, rebuilt, failed, reconciled, pending, reserve } = await openBoxStore(config, dbFile, root, log);
  if (failed.length) log.error({ failed }, 'recordings on disk that could not be registered (left untouched)');
  if (quarantined) log.error({ kept_as: quarantined, rebuilt }, 'the database was unreadable: kept aside and rebuilt from the recordings');
  if (reconciled.length) log.warn({ recordings: reconciled.map((r) => r.recordingId) }, 'interrupted recordings reconciled');
  const box = new BoxRuntime({ config, store, log, root, reserve, pendingRecovery: pending ? () => pending().then(logRecovered(log)) : undefined });
  let server: Server | null = null;
  // Triggers talk to the box only through handleCommand, like every other transport; as extensions they start
  // once the cameras are ready and stop after the trial is finalised.
  if (config.gpio.inputs.length || config.gpio.outputs.recording || config.gpio.outputs.status_led || config.gpio.outputs.sync_out) {
    const gpio = createGpioTriggers(config.gpio, { handler: box, logger: log });
    // The sync recorder first: its run exists before the first sync edge is stored.
    if (config.gpio.outputs.sync_out || config.gpio.inputs.some((i) => i.mode === 'sync'))
      box.use(new SyncRecorder({ store, gpio, config: config.gpio, log, context: () => box.context(), timeSync: () => box.timeSync() }));
    box.use(new GpioExtension(box.bus, gpio));
  }
  if (config.serial.enabled) {
    // Loaded only when used: serialport and its native binding are a tenth of the service's start-up CPU.
    const [{ SerialTrigger }, { SerialExtension }] = await Promise.all([import('../triggers/serial/serial-trigger.ts'), import('../triggers/serial/serial-extension.ts')]);
    box.use(new SerialExtension(box.bus, new SerialTrigger({ config: config.serial, handler: box, logger: log })));
  }
  const watchdog = new WatchdogExtension(() => box.cameras.values());
  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    watchdog.stop();
    await notifyStopping('finalising recordings');
    log.info({ signal }, 'stopping: finalising recordings');
    const hard = setTimeout(() => {
      log.error('shutdown took too long; exiting');
      process.exit(1);
    }, 18_000);
    try {
      await box.shutdown();
      await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
      server?.closeAllConnections();
      store.close();
      log.info('stopped');
      await logWritten(log);
    } finally {
      clearTimeout(hard);
    }
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));

  // The cameras start first: their sources take about half a second to deliver the first frames, mostly waiting
  // on ffmpeg, and the API's module graph (express and the routes, a third of the start's CPU) loads meanwhile.
  // READY still waits for both (cold start, docs/benchmarks.md).
  const initialized = box.initialize();
  initialized.catch(() => undefined); // awaited below; not an unhandled rejection while the API loads
  try {
    const { startHttp } = await import('../api/server.ts');
    server = await startHttp({ config, box, store, root, log });
  } catch (err) {
    // Nothing was recorded (no trigger could arrive yet): stop the sources that were starting, then fail.
    await initialized.catch(() => undefined);
    await box.shutdown();
    store.close();
    throw err;
  }
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.http.port;
  log.info({ url: `http://${config.http.host}:${port}/`, db: dbFile, recordings: root }, 'rigcam serving');
  await initialized;
  await notifyReady(`${box.cameras.size} camera(s)`);
  box.use(watchdog);

  if (opts.demoSeconds) {
    const start = await box.handleCommand('start_recording', { session_prefix: 'demo' }, { source: 'cli' });
    if (!start.ok) {
      log.error({ error: start.error }, 'demo trial could not start');
      return;
    }
    await new Promise((r) => setTimeout(r, opts.demoSeconds! * 1000));
    const res = await box.handleCommand('stop_recording', {}, { source: 'cli' });
    const recs = (res.data?.recordings ?? []) as Array<{ path: string; frames: number; dropped: number }>;
    const lines = recs.map(
      (r) =>
        `rigcam:   video ${path.join(root, r.path)} (${r.frames} frames, ${r.dropped} dropped)\n` +
        `rigcam:   frame timing ${path.join(root, r.path).replace(/\.ts$/, '.csv')}\n`,
    );
    process.stderr.write(
      `\nrigcam: demo trial recorded:\n${lines.join('')}` +
        `rigcam: database ${dbFile}\n` +
        `rigcam: web page at http://${config.http.host}:${port}/  (Ctrl-C to stop)\n\n`,
    );
  }
}

/**
 * `rigcam module`: the host assigns the cameras (the YAML cameras are the settings a matching camera takes, not
 * started by themselves) and owns the trial flow; the process ends after `quit`, when stdin closes, or on
 * SIGTERM/SIGINT, with every recording finalised. `ready` was said before this loaded (the host waits 10 s).
 */
export async function runModule(config: Config, log: Logger, o: { dbFile: string; cameraIndex?: number }): Promise<void> {
  const cfg = parseConfig({ ...config, cameras: [] });
  const root = recordingsRoot(cfg);
  mkdirSync(path.dirname(o.dbFile), { recursive: true });
  const { store, reconciled, pending, reserve } = await openBoxStore(cfg, o.dbFile, root, log);
  if (reconciled.length) log.warn({ recordings: reconciled.map((r) => r.recordingId) }, 'interrupted recordings reconciled');
  const box = new BoxRuntime({ config: cfg, store, log, root, cameraTemplates: config.cameras, reserve, pendingRecovery: pending ? () => pending().then(logRecovered(log)) : undefined });
  const { done } = runModuleMode({ box, input: process.stdin, output: process.stdout, log, root, readySent: true, cameraIndex: o.cameraIndex, onQuit: () => undefined });
  // A host stopped with Ctrl-C signals its whole process group, modules included: finalise as on SIGTERM.
  const exit = (): Promise<never> => logWritten(log).then(() => process.exit(0));
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => void box.shutdown().then(exit));
  await box.initialize();
  await done;
  store.close();
  await exit();
}

/** What a recovery postponed by a full disk did, once it ran. */
function logRecovered(log: Logger): (r: Recovered) => void {
  return ({ failed, reconciled }) => {
    if (failed.length) log.error({ failed }, 'recordings on disk that could not be registered (left untouched)');
    if (reconciled.length) log.warn({ recordings: reconciled.map((r) => r.recordingId) }, 'interrupted recordings reconciled');
  };
}
