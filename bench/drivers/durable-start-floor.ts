/**
 * The floor of a durable trigger on this machine: a bare Node process that reads `START` lines from a serial port
 * (the same serialport library and binding rigcam uses) and does only what a start must make durable before it
 * may say "started": it creates a trial's three files exclusively in a session folder (video, frame timing, a
 * sidecar with ~0.5 KB of JSON), commits one row to a SQLite database in WAL mode (synchronous=NORMAL, as rigcam's),
 * and fsyncs the sidecar, the folder and the WAL at once on the threadpool. Then it answers `OK START <mono µs>`,
 * the instant a start would be announced (CLOCK_MONOTONIC, one clock with the client). `STOP` closes the files.
 * No camera, no validation, no state machine: what is left of a start once everything that is rigcam's is gone.
 * Usage: node durable-start-floor.js <serial path> <folder>
 */
import { closeSync, fsync, mkdirSync, openSync, writeSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { SerialPortStream } from '@serialport/stream';
import { autoDetect } from '@serialport/bindings-cpp';
import { ReadlineParser } from '@serialport/parser-readline';
import { monoNowUs } from '../../src/clock.ts';

const [portPath, folder] = process.argv.slice(2);
if (!portPath || !folder) throw new Error('usage: durable-start-floor <serial path> <folder>');
const session = path.join(folder, 'floor-session');
mkdirSync(session, { recursive: true });
const db = new Database(path.join(folder, 'floor.db'));
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
db.exec('CREATE TABLE IF NOT EXISTS trials (id INTEGER PRIMARY KEY, number INTEGER NOT NULL, mono_us INTEGER NOT NULL)');
const insert = db.prepare('INSERT INTO trials (number, mono_us) VALUES (?, ?)');
const fsyncAsync = promisify(fsync);

/** fsync a path on the threadpool (as rigcam's storage/durable-file fsyncPath does, written out here: a floor uses nothing of rigcam's). */
async function fsyncPath(p: string): Promise<void> {
  const fd = openSync(p, 'r');
  try {
    await fsyncAsync(fd);
  } finally {
    closeSync(fd);
  }
}

const port = new SerialPortStream({ binding: autoDetect(), path: portPath, baudRate: 115200 });
port.on('open', () => process.stdout.write('ready\n'));
const lines = port.pipe(new ReadlineParser({ delimiter: '\n' }));
let number = 0;
let open: number[] = [];
lines.on('data', (raw: string) => {
  const line = raw.trim();
  if (line === 'START') void start(monoNowUs());
  else if (line === 'STOP') {
    for (const fd of open) closeSync(fd);
    open = [];
    port.write('OK STOP\n');
  }
});

async function start(atUs: number): Promise<void> {
  number += 1;
  const base = path.join(session, `trial-${number}`);
  const ts = openSync(`${base}.ts`, 'wx', 0o644);
  const csv = openSync(`${base}.csv`, 'wx', 0o644);
  writeSync(csv, 'frame,mono_us\n');
  const sidecar = `${base}.json`;
  const sc = openSync(sidecar, 'wx', 0o644);
  writeSync(sc, JSON.stringify({ format: 'floor/1', trial: number, trigger_mono_us: atUs, pad: 'x'.repeat(400) }));
  open = [ts, csv, sc];
  insert.run(number, atUs);
  await Promise.all([fsyncPath(sidecar), fsyncPath(session), fsyncPath(`${path.join(folder, 'floor.db')}-wal`)]);
  port.write(`OK START ${monoNowUs()}\n`);
}

process.on('SIGTERM', () => {
  port.close(() => process.exit(0));
});
