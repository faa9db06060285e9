// `lab env start-all` of one balancer and four workers (their services
// deployed, started, tested) on two libvirt hypervisors against the same on
// one, from images already built, interleaved, median of RUNS (default 5);
// and the control path per VM: virsh round trips and the time spent in them
// (from --debug's per-call lines). Real libvirtd and sshd per hypervisor, each
// in its own namespaces (test/hypervisors.ts). npm run bench:libvirt (root)
import { execa } from 'execa';
import { cpus } from 'node:os';
import { lab, tempLab } from '../test/helpers.js';
import { makeLabBridge } from '../test/netns.js';
import { makeHypervisors, onHypervisors } from '../test/hypervisors.js';
import { median } from './stats.js';

const RUNS = Number(process.env.RUNS ?? 5);
const ns = `labbv${process.pid % 100000}`;
const env = (s: string) =>
  s.replace(
    "      groups: [\n        { role: 'lb', image: 'mini', count: 1, service: 'lb', version: '1' },\n        { role: 'worker', image: 'mini', min: 1, max: 2, service: 'hello', version: '1.0.0' },",
    "      groups: [\n        { role: 'lb', image: 'mini', count: 1, service: 'lb', version: '1' },\n        { role: 'worker', image: 'mini', count: 4, service: 'hello', version: '1.0.0' },",
  );
const hosts = ['demo-lb-1', ...[1, 2, 3, 4].map((n) => `demo-worker-${n}`)];

interface Run {
  s: number;
  calls: number;
  virshMs: number;
}

await makeLabBridge(ns);
const made = await makeHypervisors(ns, 'labnet', 2);
const two = await tempLab((s) => env(onHypervisors(made.hvs)(s)));
// Another lab name: the two labs share hv1, where domains and volumes are named after the lab.
const one = await tempLab((s) => env(onHypervisors([made.hvs[0]!], 4096, 8)(s)).replace("name: 'lab',", "name: 'one',"));
const labs = { 'two hypervisors': two.dir, 'one hypervisor': one.dir };
const inNs = (dir: string, args: string[]) => lab(['--lab', dir, ...args], { netns: ns, timeoutMs: 900_000 });

async function startAll(dir: string): Promise<Run> {
  const t = performance.now();
  const r = await inNs(dir, ['--debug', 'env', 'start-all', 'demo']);
  const s = (performance.now() - t) / 1000;
  if (r.exitCode !== 0) throw new Error(`start-all: ${r.stdout}\n${r.stderr}`);
  const calls = [...r.stderr.matchAll(/^debug: virsh \S+ ([\d.]+) ms: /gm)].map((m) => Number(m[1]));
  return { s, calls: calls.length, virshMs: calls.reduce((a, b) => a + b, 0) };
}

async function clear(dir: string): Promise<void> {
  await inNs(dir, ['env', 'stop', 'demo', '--deadline', '0']);
  for (const h of hosts) await inNs(dir, ['image', 'del', h, '--force']);
  // Both labs lease the same addresses (with other MACs): no stale neighbour entry for the next one.
  await execa('ip', ['-n', ns, 'neigh', 'flush', 'all'], { reject: false });
}

try {
  for (const dir of Object.values(labs)) {
    const b = await inNs(dir, ['image', 'build', 'mini']);
    if (b.exitCode !== 0) throw new Error(b.stderr);
  }
  const results: Record<string, Run[]> = { 'two hypervisors': [], 'one hypervisor': [] };
  for (let i = 0; i < RUNS; i++) {
    for (const [name, dir] of Object.entries(labs)) {
      results[name]!.push(await startAll(dir));
      await clear(dir);
    }
  }
  console.log(`lab env start-all demo (1 lb + 4 workers, services included), libvirt ${(await execa('virsh', ['--version'])).stdout}, QEMU TCG, ${cpus().length} cores, median of ${RUNS}, interleaved`);
  console.log('where             wall time   virsh round trips per VM   time in virsh per VM');
  for (const [name, runs] of Object.entries(results)) {
    const s = median(runs.map((r) => r.s));
    const calls = median(runs.map((r) => r.calls)) / hosts.length;
    const ms = median(runs.map((r) => r.virshMs)) / hosts.length;
    console.log(`${name.padEnd(16)}  ${s.toFixed(1).padStart(7)} s  ${calls.toFixed(1).padStart(24)}  ${ms.toFixed(0).padStart(17)} ms   (runs: ${runs.map((r) => r.s.toFixed(1)).join(', ')} s)`);
  }
  const ratio = median(results['two hypervisors']!.map((r) => r.s)) / median(results['one hypervisor']!.map((r) => r.s));
  console.log(`two / one: ${ratio.toFixed(2)}x (goal <= 1.2x)`);
} finally {
  for (const dir of Object.values(labs)) {
    await clear(dir).catch(() => undefined);
    await inNs(dir, ['image', 'del', 'mini', '--force']).catch(() => undefined);
  }
  await made.cleanup();
  await execa('ip', ['netns', 'del', ns], { reject: false });
  two.cleanup();
  one.cleanup();
}
