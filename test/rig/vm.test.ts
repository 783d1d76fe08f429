import assert from 'node:assert/strict';
import { test } from 'node:test';
import { panicBeforeUserSpace } from './vm.ts';

// The guest console of the boot that failed a CI simulation of the rig (session 14), trimmed: TCG, 2 vCPUs, trixie's
// 6.12 kernel patching sched_clock's static branch on one CPU while the other ran it.
const earlyPanic = `[    2.393514] IPI shorthand broadcast: enabled
[    2.404393] sched_clock: Marking stable (2444181042, -42796716)->(2429538594, -28154268)
[    2.406401] Oops: int3: 0000 [#1] PREEMPT SMP NOPTI
[    2.406714] CPU: 1 UID: 0 PID: 0 Comm: swapper/1 Not tainted 6.12.117+deb13-amd64 #1  Debian 6.12.117-1
[    2.406943] RIP: 0010:sched_clock_cpu+0x9/0x1d0
[    2.409004] Oops: int3: 0000 [#2] PREEMPT SMP NOPTI
[    2.409286] Kernel panic - not syncing: Fatal exception in interrupt
[    5.082391] Shutting down cpus with NMI
`;

test('a kernel panic before any user space is recognised, named by its first Oops line', () => {
  assert.equal(panicBeforeUserSpace(earlyPanic), 'Oops: int3: 0000 [#1] PREEMPT SMP NOPTI');
});

test('a panic after user space started is not one the rig may boot past', () => {
  const late = `[    3.100000] Run /init as init process\n[    9.000000] EXT4-fs (vda): mounted filesystem\n${earlyPanic}`;
  assert.equal(panicBeforeUserSpace(late), null);
  const initDied = `[    3.1] Run /sbin/init as init process\n[    4.2] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000004\n`;
  assert.equal(panicBeforeUserSpace(initDied), null);
});

test('a boot without a panic (an Oops alone, a clean boot, an empty console) is not retried', () => {
  assert.equal(panicBeforeUserSpace(''), null);
  assert.equal(panicBeforeUserSpace('[    1.0] Linux version 6.12\n[    3.1] Run /init as init process\n'), null);
  assert.equal(panicBeforeUserSpace('[    2.4] Oops: int3: 0000 [#1] PREEMPT SMP NOPTI\n[    2.5] RIP: 0010:x\n'), null);
});
