// The libgpiod stand-ins (test/standins) are only worth their replay if they behave like the
// real tools: checked here against real captures in hw-fixtures/gpio.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const STANDINS = fileURLToPath(new URL('../standins', import.meta.url));
const FIXTURES = fileURLToPath(new URL('../../hw-fixtures/gpio/', import.meta.url));

function envFor(gen: 1 | 2, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...process.env, PATH: `${STANDINS}:${process.env.PATH}`, GPIOD_STANDIN_VERSION: String(gen), ...extra };
}

function run(gen: 1 | 2, argv: string[], extra: Record<string, string> = {}): { output: string; status: number | null; stdout: string } {
  const r = spawnSync(argv[0]!, argv.slice(1), { env: envFor(gen, extra), encoding: 'utf8' });
  return { output: r.stdout + r.stderr, status: r.status, stdout: r.stdout };
}

test('v1 stand-ins answer like the real libgpiod 1.6.3 tools did (captured messages)', async () => {
  const capture = await readFile(join(FIXTURES, 'v1/libgpiod-1.6.3-tool-messages.txt'), 'utf8');
  const blocks = new Map<string, { output: string; status: number }>();
  for (const m of capture.matchAll(/^\$ (.*)\n([\s\S]*?)\[exit status (\d+)\]\n/gm)) {
    blocks.set(m[1]!, { output: m[2]!, status: Number(m[3]) });
  }
  const commands = [
    ['gpiomon', '--version'],
    ['gpioset', '--version'],
    ['gpiodetect', '--version'],
    ['gpioinfo', '--version'],
    ['gpiomon', 'gpiochip0', '17'],
    ['gpiomon', '--num-events=1', '--format=%o %e %s %n', 'gpiochip9', '17'],
    ['gpiomon', '-c', 'gpiochip0', '17'],
    ['gpiomon', '--edges', 'both', 'gpiochip0', '17'],
    ['gpiomon', '--bias=disabled', 'gpiochip0', '17'],
    ['gpiomon', '--debounce-period', '10ms', 'gpiochip0', '17'],
    ['gpiomon', '--event-clock', 'monotonic', 'gpiochip0', '17'],
    ['gpiomon', 'gpiochip0'],
    ['gpiomon'],
    ['gpiomon', 'gpiochip0', 'x'],
    ['gpioset', '--mode=signal', 'gpiochip0', '18=1'],
    ['gpioset', '-c', 'gpiochip0', '18=1'],
    ['gpioset', '--mode=bogus', 'gpiochip0', '18=1'],
    ['gpiodetect'],
    ['gpioinfo', 'gpiochip0'],
  ];
  assert.equal(blocks.size, commands.length);
  for (const argv of commands) {
    const real = blocks.get(argv.join(' '));
    assert.ok(real, `no capture for ${argv.join(' ')}`);
    // the capture was taken on a machine without GPIO chips
    const got = run(1, argv, { GPIOD_STANDIN_BOARD: 'none' });
    assert.deepEqual({ output: got.output, status: got.status }, real, argv.join(' '));
  }
});

test('v1 gpiomon replays a recording exactly as it was printed', async () => {
  for (const [file, chip, line] of [
    ['v1/gpiomon-rpi-line4-switch.txt', 'gpiochip0', '4'],
    ['v1/gpiomon-rpi-line20-button-to-ground.txt', 'gpiochip0', '20'],
    ['v1/gpiomon-pisound-micro-line6-pull-up.txt', 'gpiochip0', '6'],
  ]) {
    const text = await readFile(join(FIXTURES, file!), 'utf8');
    const got = run(1, ['gpiomon', '--num-events', String(text.trim().split('\n').length), chip!, line!], {
      GPIOMON_FIXTURE: file!,
      GPIOMON_SPEED: '100',
    });
    assert.equal(got.stdout, text, file);
  }
  // the README's custom format example: "0 4 1156 615459801" for a falling edge
  const readme = await readFile(join(FIXTURES, 'v1/gpiomon-readme-format-e-o-s-n-falling-edge.txt'), 'utf8');
  assert.match(readme, /^0 4 1156 615459801\n$/);
  const custom = run(1, ['gpiomon', '--format=%e %o %s %n', '--falling-edge', '-n', '1', 'gpiochip0', '4'], {
    GPIOMON_FIXTURE: 'v1/gpiomon-rpi-line4-switch.txt',
    GPIOMON_SPEED: '100',
  });
  assert.equal(custom.stdout, '0 4 6073 162199768\n');
});

test('v2 gpiomon replays the README example of a Raspberry Pi 4 exactly', async () => {
  const text = await readFile(join(FIXTURES, 'v2/gpiomon-rpi4-readme-rising-by-name.txt'), 'utf8');
  const got = run(2, ['gpiomon', '--num-events=3', '--edges=rising', 'GPIO22'], {
    GPIOD_STANDIN_BOARD: 'rpi4',
    GPIOMON_FIXTURE: 'v2/gpiomon-rpi4-readme-rising-by-name.txt',
    GPIOMON_SPEED: '1000',
  });
  assert.equal(got.stdout, text);
  const version = run(2, ['gpiomon', '--version']);
  assert.equal(version.stdout, (await readFile(join(FIXTURES, 'v2/gpioset-version.txt'), 'utf8')).replace('gpioset', 'gpiomon'));
});

test('v2 tools refuse v1 syntax the way libgpiod 2 does', () => {
  assert.deepEqual(run(2, ['gpiomon', 'gpiochip0', '17']), {
    output: "gpiomon: cannot find line 'gpiochip0'\ngpiomon: cannot find line '17'\n",
    status: 1,
    stdout: '',
  });
  assert.equal(run(2, ['gpiomon', '--rising-edge', '-c', 'gpiochip0', '17']).output, "gpiomon: unrecognized option '--rising-edge'\ngpiomon: try gpiomon --help\n");
  assert.equal(run(2, ['gpioset', '--mode=signal', 'gpiochip0', '18=1']).output, "gpioset: unrecognized option '--mode=signal'\ngpioset: try gpioset --help\n");
  assert.equal(run(2, ['gpiomon', '-c', 'gpiochip0', '--bias', 'disable', '17']).output, 'gpiomon: invalid bias: disable\n');
  assert.equal(run(2, ['gpiomon', '-c', 'gpiochip0', '99']).output, "gpiomon: offset 99 is out of range on chip 'gpiochip0'\n");
  assert.equal(run(2, ['gpiomon', '-c', 'gpiochip4', '17']).output, "gpiomon: cannot find GPIO chip character device 'gpiochip4'\n");
  // a Pi 5 on an early kernel has RP1 on gpiochip4
  assert.equal(run(2, ['gpiodetect'], { GPIOD_STANDIN_BOARD: 'rpi5-early-kernel' }).output.split('\n')[4], 'gpiochip4 [pinctrl-rp1] (54 lines)');
});

test('v2 gpioset holds the line until killed and refuses a held line with the real message', async (t) => {
  const state = await mkdtemp(join(tmpdir(), 'rigcam-gpioset-'));
  t.after(() => rm(state, { recursive: true, force: true }));
  const record = join(state, 'record.jsonl');
  const holder = spawn('gpioset', ['--banner', '-c', 'gpiochip0', '18=1'], { env: envFor(2, { GPIOSET_RECORD: record }) });
  const banner = await new Promise<string>((resolve) => holder.stdout.once('data', (d: Buffer) => resolve(d.toString())));
  assert.equal(banner, "Setting line '18'...\n");
  const busy = run(2, ['gpioset', '-c', 'gpiochip0', '18=0'], { GPIOSET_RECORD: record });
  const real = (await readFile(join(FIXTURES, 'v2/libgpiod-2.x-tool-messages.txt'), 'utf8')).split('\n').find((l) => l.startsWith('gpioset: unable'));
  assert.deepEqual([busy.output, busy.status], [`${real}\n`, 1]);
  const exited = new Promise<NodeJS.Signals | null>((resolve) => holder.once('exit', (_code, signal) => resolve(signal)));
  holder.kill('SIGTERM');
  assert.equal(await exited, 'SIGTERM'); // no handler in libgpiod 2: the signal ends it
  const events = (await readFile(record, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { event: string; value: number });
  assert.deepEqual(
    events.map((e) => [e.event, e.value]),
    [
      ['set', 1],
      ['released', 1],
    ],
  );
});

test('v1 gpiomon block-buffers its output on a pipe unless --line-buffered', async () => {
  // Waits for output up to killAfterMs, then sends SIGTERM (v1 gpiomon then flushes and exits).
  const watch = (args: string[], killAfterMs: number) =>
    new Promise<{ beforeKill: string; all: string }>((resolve) => {
      const child = spawn('gpiomon', args, {
        env: envFor(1, { GPIOMON_FIXTURE: 'v1/gpiomon-rpi-line20-button-to-ground.txt', GPIOD_STANDIN_BOARD: 'rpi4' }),
      });
      let all = '';
      let beforeKill: string | undefined;
      const kill = () => {
        beforeKill ??= all;
        child.kill('SIGTERM');
      };
      child.stdout.on('data', (d: Buffer) => {
        all += d.toString();
        if (args.includes('--line-buffered')) kill();
      });
      const timer = setTimeout(kill, killAfterMs);
      child.once('close', () => {
        clearTimeout(timer);
        resolve({ beforeKill: beforeKill ?? all, all });
      });
    });
  const first = 'event: FALLING EDGE offset: 20 timestamp: [  263978.994698254]\n';
  const lineBuffered = await watch(['--line-buffered', 'gpiochip0', '20'], 5000);
  assert.ok(lineBuffered.beforeKill.startsWith(first), `line-buffered: ${JSON.stringify(lineBuffered)}`);
  // 1.2 s: four of the six presses and releases have been printed into the buffer by then
  const blockBuffered = await watch(['gpiochip0', '20'], 1200);
  assert.equal(blockBuffered.beforeKill, '');
  assert.ok(blockBuffered.all.startsWith(first), 'flushed when it exits');
});
