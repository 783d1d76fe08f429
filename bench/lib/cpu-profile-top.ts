/**
 * The top entries of a V8 .cpuprofile (from RIGCAM_BENCH_CPU_PROF, see drivers/overhead-box.ts, or node --cpu-prof):
 * self and inclusive time per function, idle excluded. V8 samples wall time, so on a loaded machine a function
 * that was descheduled looks costlier than it is; compare profiles taken under similar load, or use perf.
 * Usage: node --import tsx bench/lib/cpu-profile-top.ts FILE.cpuprofile [how many, default 25]
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const [file, nArg] = process.argv.slice(2);
if (!file) throw new Error('usage: cpu-profile-top FILE.cpuprofile [n]');
const n = Number(nArg ?? 25);
const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(p.nodes.map((x) => [x.id, x]));
const parent = new Map<number, number>();
for (const x of p.nodes) for (const c of x.children ?? []) parent.set(c, x.id);
const key = (x: ProfileNode): string => {
  const f = x.callFrame;
  return `${f.functionName || '(anonymous)'} ${f.url.replace(/.*\/(src|bench|node_modules)\//, '$1/')}:${f.lineNumber + 1}`;
};
const self = new Map<string, number>();
const incl = new Map<string, number>();
let total = 0;
let idle = 0;
p.samples.forEach((id, i) => {
  const t = p.timeDeltas[i] ?? 0;
  const node = byId.get(id)!;
  total += t;
  if (node.callFrame.functionName === '(idle)') {
    idle += t;
    return;
  }
  self.set(key(node), (self.get(key(node)) ?? 0) + t);
  const seen = new Set<string>();
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const k = key(byId.get(cur)!);
    if (seen.has(k) || k.startsWith('(root)')) continue;
    seen.add(k);
    incl.set(k, (incl.get(k) ?? 0) + t);
  }
});
const busy = total - idle;
const show = (title: string, m: Map<string, number>): void => {
  console.log(`--- ${title} (ms, % of busy)`);
  for (const [k, t] of [...m].sort((a, b) => b[1] - a[1]).slice(0, n)) console.log(`${(t / 1e3).toFixed(0).padStart(7)} ${((100 * t) / busy).toFixed(1).padStart(5)}%  ${k}`);
};
console.log(`${(total / 1e6).toFixed(2)} s sampled, busy ${(busy / 1e6).toFixed(2)} s`);
show('self', self);
show('inclusive', incl);
