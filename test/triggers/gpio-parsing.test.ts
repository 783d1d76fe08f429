// The pure parts of the GPIO triggers, on the recorded real outputs in hw-fixtures/gpio:
// tool versions and output, error texts, chip choice, sysfs numbering, config, edge filtering.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EdgeFilter, type LogicalEdge } from '../../src/triggers/gpio/edge-filter.ts';
import { parseGpiodetect, pickHeaderChip } from '../../src/triggers/gpio/gpio-chips.ts';
import { gpioConfigSchema } from '../../src/triggers/gpio/gpio-config.ts';
import { buildGpiomonArgs, buildGpiosetArgs } from '../../src/triggers/gpio/gpiod-args.ts';
import { classifyGpiodError } from '../../src/triggers/gpio/gpiod-errors.ts';
import { parseGpiodVersion } from '../../src/triggers/gpio/gpiod-version.ts';
import { parseGpiomonDefaultLine, parseGpiomonLine } from '../../src/triggers/gpio/gpiomon-output.ts';
import { SysfsEdgeSource } from '../../src/triggers/gpio/sysfs-adapter.ts';
import { pickSysfsChip, readSysfsChips, sysfsGpioNumber } from '../../src/triggers/gpio/sysfs-numbering.ts';
import { silentLogger } from '../../src/log/logger.ts';
import type { GpioStatus } from '../../src/triggers/gpio/gpio-hardware.ts';

const FIXTURES = fileURLToPath(new URL('../../hw-fixtures/gpio/', import.meta.url));
const fixture = (rel: string) => readFile(join(FIXTURES, rel), 'utf8');
const V1 = { major: 1, minor: 6, patch: 3, text: '1.6.3' } as const;
const V2 = { major: 2, minor: 2, patch: 1, text: '2.2.1' } as const;

test('--version of both tool generations', async () => {
  assert.deepEqual(parseGpiodVersion(await fixture('v1/gpiomon-version.txt')), V1);
  assert.deepEqual(parseGpiodVersion(await fixture('v1/gpioset-version.txt')), V1);
  assert.deepEqual(parseGpiodVersion(await fixture('v2/gpioset-version.txt')), V2);
  assert.equal(parseGpiodVersion('gpiomon: command not found'), null);
  assert.equal(parseGpiodVersion('gpiomon (libgpiod) v3.0.0'), null);
});

test("gpiomon's default output of both generations", async () => {
  const switchLines = (await fixture('v1/gpiomon-rpi-line4-switch.txt')).trim().split('\n');
  const v1 = switchLines.map(parseGpiomonDefaultLine);
  assert.equal(v1.length, 7);
  assert.deepEqual(v1[0], { rising: true, offset: 4, monoUs: 6069635294 });
  assert.deepEqual(v1[1], { rising: false, offset: 4, monoUs: 6073162199 });
  assert.deepEqual(
    v1.map((e) => e?.rising),
    [true, false, true, false, true, false, true],
  );
  // timestamps are padded to 8 characters: "[  263978.994698254]"
  assert.deepEqual(parseGpiomonDefaultLine((await fixture('v1/gpiomon-rpi-line20-button-to-ground.txt')).split('\n')[0]!), {
    rising: false,
    offset: 20,
    monoUs: 263978994698,
  });

  const bounce = (await fixture('v2/gpiomon-rk3328-line16-bounce.txt')).trim().split('\n').map(parseGpiomonDefaultLine);
  assert.equal(bounce.length, 9);
  assert.deepEqual(bounce[0], { rising: false, monoUs: 133441027, chip: 'gpiochip2', offset: 16 });
  const named = (await fixture('v2/gpiomon-beagley-ai-two-lines-15-17.txt')).split('\n')[1]!;
  assert.deepEqual(parseGpiomonDefaultLine(named), { rising: false, monoUs: 1124904535, chip: 'gpiochip2', offset: 17, name: 'GPIO6' });
  const byName = (await fixture('v2/gpiomon-rpi4-readme-rising-by-name.txt')).split('\n')[2]!;
  assert.deepEqual(parseGpiomonDefaultLine(byName), { rising: true, monoUs: 10047179790, name: 'GPIO22' });
  assert.equal(parseGpiomonDefaultLine('gpiomon: error waiting for events: No such device'), null);
});

test('our gpiomon formats: v1 nanoseconds come unpadded', () => {
  assert.deepEqual(parseGpiomonLine(1, '4 1 6069 635294302'), { offset: 4, rising: true, monoUs: 6069635294 });
  // %n prints tv_nsec with %ld: 4602295 ns is .004602295 s
  assert.deepEqual(parseGpiomonLine(1, '15 0 1125 4602295'), { offset: 15, rising: false, monoUs: 1125004602 });
  assert.deepEqual(parseGpiomonLine(2, '15 2 1125.004602295'), { offset: 15, rising: false, monoUs: 1125004602 });
  assert.deepEqual(parseGpiomonLine(2, '15 1 1125.004602295'), { offset: 15, rising: true, monoUs: 1125004602 });
  assert.equal(parseGpiomonLine(1, '15 2 1125 4602295'), null); // v2 edge code in v1
  assert.equal(parseGpiomonLine(2, '15 0 1125.004602295'), null); // v1 edge code in v2
  assert.equal(parseGpiomonLine(2, "Monitoring line '15'..."), null);
});

test('command lines for both generations', () => {
  assert.deepEqual(buildGpiomonArgs(V1, { chip: 'gpiochip0', lines: [17, 27], bias: 'disabled', debounceUs: 5000 }), [
    '--line-buffered',
    '--format=%o %e %s %n',
    '--bias=disable',
    'gpiochip0',
    '17',
    '27',
  ]);
  assert.deepEqual(buildGpiomonArgs(V1, { chip: 'gpiochip4', lines: [17], bias: 'as-is', debounceUs: 0 }), [
    '--line-buffered',
    '--format=%o %e %s %n',
    'gpiochip4',
    '17',
  ]);
  assert.deepEqual(buildGpiomonArgs(V2, { chip: 'gpiochip0', lines: [17], bias: 'pull-up', debounceUs: 10_000 }), [
    '--chip', 'gpiochip0', '--consumer', 'rigcam', '--edges', 'both', '--event-clock', 'monotonic',
    '--format', '%o %e %S', '--bias', 'pull-up', '--debounce-period', '10000us', '17',
  ]);
  assert.deepEqual(buildGpiosetArgs(V1, 'gpiochip0', 18, true), ['--mode=signal', 'gpiochip0', '18=1']);
  assert.deepEqual(buildGpiosetArgs(V2, 'gpiochip0', 18, false), ['--banner', '--chip', 'gpiochip0', '--consumer', 'rigcam', '18=0']);
});

test('real tool error texts are named', async () => {
  const v1 = await fixture('v1/libgpiod-1.6.3-tool-messages.txt');
  const message = (cmd: string) => v1.split(`$ ${cmd}\n`)[1]!.split('\n[exit status')[0]!;
  assert.equal(classifyGpiodError(message('gpiomon gpiochip0 17')), 'chip_missing');
  assert.equal(classifyGpiodError(message('gpiomon -c gpiochip0 17')), 'usage');
  assert.equal(classifyGpiodError(message('gpiomon --edges both gpiochip0 17')), 'usage');
  assert.equal(classifyGpiodError(message('gpiomon --bias=disabled gpiochip0 17')), 'usage');
  assert.equal(classifyGpiodError(message('gpiomon gpiochip0 x')), 'line_invalid');
  assert.equal(classifyGpiodError(message('gpioset --mode=signal gpiochip0 18=1')), 'chip_missing');
  const v2 = (await fixture('v2/libgpiod-2.x-tool-messages.txt')).split('\n');
  assert.equal(classifyGpiodError(v2.find((l) => l.includes('Device or resource busy'))!), 'line_busy');
  assert.equal(classifyGpiodError(v2.find((l) => l.includes("cannot find line 'gpiochip2'"))!), 'line_invalid');
  assert.equal(classifyGpiodError("gpiomon: cannot find GPIO chip character device 'gpiochip7'"), 'chip_missing');
  assert.equal(classifyGpiodError('gpiomon: error reading line events: No such device'), 'device_gone');
});

test('the header chip of a Pi 4, a Pi 5 and a Pi 5 on an early kernel', async () => {
  const pi4 = parseGpiodetect(await fixture('boards/rpi4-gpiodetect.txt'));
  assert.deepEqual(pi4, [
    { name: 'gpiochip0', label: 'pinctrl-bcm2711', lines: 58 },
    { name: 'gpiochip1', label: 'raspberrypi-exp-gpio', lines: 8 },
  ]);
  assert.equal(pickHeaderChip(pi4)?.name, 'gpiochip0');
  const pi5 = parseGpiodetect(await fixture('boards/rpi5-gpiodetect.txt'));
  assert.equal(pi5.length, 5);
  assert.deepEqual(pickHeaderChip(pi5), { name: 'gpiochip0', label: 'pinctrl-rp1', lines: 54 });
  assert.equal(pickHeaderChip(parseGpiodetect(await fixture('boards/rpi5-early-kernel-gpiodetect.txt')))?.name, 'gpiochip4');
  assert.equal(pickHeaderChip(parseGpiodetect('gpiochip0 [1f000d0000.gpio] (32 lines)')), undefined);
});

/** Lays out /sys/class/gpio for a board: chips from the transcript's `ls`, line counts from gpiodetect. */
async function sysfsTree(board: 'rpi4' | 'rpi5'): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), `rigcam-sysfs-${board}-`));
  const transcript = await fixture(`boards/${board}-sysfs-transcript.txt`);
  const detect = parseGpiodetect(await fixture(`boards/${board}-gpiodetect.txt`));
  const listed = /gpiochip\d+/.test(transcript.split('\n')[1] ?? '') ? transcript.split('\n')[1]!.match(/gpiochip\d+/g)! : [];
  const labelled = [...transcript.matchAll(/\$ cat \/sys\/class\/gpio\/(gpiochip\d+)\/label\n(.+)\n/g)].map((m) => [m[1]!, m[2]!]);
  const dirs = [...new Set([...listed, ...labelled.map(([d]) => d)])].sort((a, b) => Number(a.slice(8)) - Number(b.slice(8)));
  for (const [i, dir] of dirs.entries()) {
    const base = Number(dir.slice('gpiochip'.length));
    const label = labelled.find(([d]) => d === dir)?.[1];
    const next = dirs[i + 1];
    // A chip's size is the gap to the next base; the labelled one takes its size from gpiodetect.
    const chip = label ? detect.find((c) => c.label === label)! : detect.find((c) => next && c.lines === Number(next.slice(8)) - base)!;
    await mkdir(join(root, dir));
    await writeFile(join(root, dir, 'base'), `${base}\n`);
    await writeFile(join(root, dir, 'label'), `${label ?? chip.label}\n`);
    await writeFile(join(root, dir, 'ngpio'), `${chip.lines}\n`);
  }
  await writeFile(join(root, 'export'), '');
  await writeFile(join(root, 'unexport'), '');
  return root;
}

test('sysfs numbers on current kernels: base 512 on a Pi 4, 569 on a Pi 5', async (t) => {
  const pi4 = await sysfsTree('rpi4');
  const pi5 = await sysfsTree('rpi5');
  t.after(() => Promise.all([rm(pi4, { recursive: true }), rm(pi5, { recursive: true })]));
  const chip4 = pickSysfsChip(await readSysfsChips(pi4))!;
  assert.deepEqual(chip4, { dir: 'gpiochip512', base: 512, label: 'pinctrl-bcm2711', ngpio: 58 });
  assert.equal(sysfsGpioNumber(chip4, 17), 529);
  const chips5 = await readSysfsChips(pi5);
  assert.deepEqual(
    chips5.map((c) => [c.dir, c.ngpio]),
    [['gpiochip512', 15], ['gpiochip527', 6], ['gpiochip533', 32], ['gpiochip565', 4], ['gpiochip569', 54]],
  );
  const chip5 = pickSysfsChip(chips5)!;
  assert.equal(chip5.label, 'pinctrl-rp1');
  assert.equal(sysfsGpioNumber(chip5, 17), 586);
  assert.throws(() => sysfsGpioNumber(chip5, 54), RangeError);
  // an old kernel's numbering, no header label: the configured chip name decides
  assert.deepEqual(pickSysfsChip([{ dir: 'gpiochip0', base: 0, label: 'gpio-mockup-A', ngpio: 8 }], 'gpiochip0')?.base, 0);
});

test('sysfs backend without the onoff package: a clear status, no crash', async (t) => {
  const root = await sysfsTree('rpi4');
  t.after(() => rm(root, { recursive: true }));
  const source = new SysfsEdgeSource([{ line: 17, bias: 'as-is' }], silentLogger(), { root, backoff: { initialMs: 5000 } });
  const statuses: GpioStatus[] = [];
  source.on('status', (s) => statuses.push(s));
  source.start();
  t.after(() => source.stop());
  let onoffPresent = true;
  try {
    await import('onoff' as string);
  } catch {
    onoffPresent = false;
  }
  const deadline = Date.now() + 3000;
  while (!statuses.some((s) => s.state !== 'starting') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const last = statuses.at(-1)!;
  if (onoffPresent) {
    // with onoff installed, the temp tree has no gpio529/ files: the export fails, still as a status
    assert.equal(last.state, 'restarting');
  } else {
    assert.deepEqual([last.state, last.fault, last.message], [
      'restarting',
      'tool_missing',
      'the sysfs backend needs the npm package onoff (npm install onoff)',
    ]);
  }
});

test('sysfs backend running: its status says edges are stamped in user space', async (t) => {
  const root = await sysfsTree('rpi4');
  t.after(() => rm(root, { recursive: true }));
  // onoff itself (a third-party module, absent here) is replaced by the smallest Gpio that watches nothing.
  class Gpio {
    watch(): void {}
    unwatchAll(): void {}
    async write(): Promise<void> {}
    unexport(): void {}
  }
  const source = new SysfsEdgeSource([{ line: 17, bias: 'as-is' }], silentLogger(), { root, load: async () => ({ Gpio }) as never });
  const statuses: GpioStatus[] = [];
  source.on('status', (s) => statuses.push(s));
  source.start();
  t.after(() => source.stop());
  const deadline = Date.now() + 3000;
  while (!statuses.some((s) => s.state !== 'starting') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const running = statuses.find((s) => s.state === 'running');
  assert.ok(running, JSON.stringify(statuses));
  assert.match(running.message ?? '', /user space/);
});

test('config: defaults, the bias follows polarity, mistakes are refused', () => {
  const cfg = gpioConfigSchema.parse({ inputs: [{ line: 17 }, { line: 22, active_low: true, mode: 'marker', label: 'reward' }] });
  assert.deepEqual(cfg, {
    backend: 'gpiod',
    chip: 'gpiochip0',
    inputs: [
      { line: 17, mode: 'level', active_low: false, bias: 'pull-down', debounce_ms: 5, min_pulse_ms: 0 },
      { line: 22, mode: 'marker', active_low: true, bias: 'pull-up', debounce_ms: 5, min_pulse_ms: 0, label: 'reward' },
    ],
    outputs: {},
  });
  assert.deepEqual(gpioConfigSchema.parse({ outputs: { recording: { line: 18 } } }).outputs, { recording: { line: 18, active_low: false } });
  assert.equal(gpioConfigSchema.parse({ inputs: [{ line: 17, bias: 'as-is' }] }).inputs[0]!.bias, 'as-is');
  const refused = (input: unknown, pattern: RegExp) => {
    const r = gpioConfigSchema.safeParse(input);
    assert.equal(r.success, false);
    assert.match(JSON.stringify(r.error!.issues), pattern);
  };
  refused({ inputs: [{ line: 17, mode: 'start_stop' }] }, /needs stop_line/);
  refused({ inputs: [{ line: 17, mode: 'level', stop_line: 27 }] }, /only used by mode start_stop/);
  refused({ inputs: [{ line: 17 }], outputs: { recording: { line: 17 } } }, /line 17 is used by both/);
  refused({ inputs: [{ line: 17, bias: 'pull-sideways' }] }, /bias/);
  refused({ chip: '/dev/gpiochip0' }, /gpiochipN or auto/);
  refused({ inputs: [{ line: -1 }] }, /line/);
});

/** Feeds an EdgeFilter and collects its output once its timers have run. */
async function filtered(opts: { debounceUs: number; minPulseUs: number }, edges: [boolean, number][]): Promise<LogicalEdge[]> {
  const out: LogicalEdge[] = [];
  const filter = new EdgeFilter({ ...opts, settleMs: 5 }, (e) => out.push(e));
  for (const [active, us] of edges) filter.push(active, us);
  await new Promise((r) => setTimeout(r, (opts.debounceUs + opts.minPulseUs) / 1000 + 60));
  filter.dispose();
  return out;
}

test('edge filter: a bounce burst is one change stamped with its first edge', async () => {
  // a second burst that comes back to active is nothing
  assert.deepEqual(
    await filtered({ debounceUs: 5000, minPulseUs: 0 }, [[true, 1000], [false, 1400], [true, 2100], [false, 30_000], [true, 31_000]]),
    [{ active: true, monoUs: 1000 }],
  );
  // a burst that ends inactive is a change at its first edge; an edge 9 ms later starts a new one
  assert.deepEqual(
    await filtered({ debounceUs: 5000, minPulseUs: 0 }, [[true, 1000], [false, 1400], [true, 2100], [false, 30_000], [true, 31_000], [false, 32_000]]),
    [{ active: true, monoUs: 1000 }, { active: false, monoUs: 30_000 }],
  );
  assert.deepEqual(
    await filtered({ debounceUs: 5000, minPulseUs: 0 }, [[true, 1000], [false, 30_000], [true, 31_000], [false, 40_000]]),
    [{ active: true, monoUs: 1000 }, { active: false, monoUs: 40_000 }],
  );
});

test('edge filter: minimum pulse width drops short pulses, keeps long ones with their start', async () => {
  assert.deepEqual(await filtered({ debounceUs: 0, minPulseUs: 10_000 }, [[true, 0], [false, 9_999]]), []);
  assert.deepEqual(await filtered({ debounceUs: 0, minPulseUs: 10_000 }, [[true, 0], [false, 10_000]]), [
    { active: true, monoUs: 0 },
    { active: false, monoUs: 10_000 },
  ]);
  // still active when the time is up: the start goes out alone, stamped with the edge
  assert.deepEqual(await filtered({ debounceUs: 0, minPulseUs: 10_000 }, [[true, 500]]), [{ active: true, monoUs: 500 }]);
  // a short gap between two long pulses is not a pulse and not dropped
  assert.deepEqual(await filtered({ debounceUs: 0, minPulseUs: 10_000 }, [[true, 0], [false, 20_000], [true, 21_000], [false, 40_000]]), [
    { active: true, monoUs: 0 },
    { active: false, monoUs: 20_000 },
    { active: true, monoUs: 21_000 },
    { active: false, monoUs: 40_000 },
  ]);
});
