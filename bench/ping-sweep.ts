// Ping sweeps inside namespaces this script makes and removes, `lab hosts
// filter` against fping on the same addresses, interleaved, wall time (lab's
// including node's start):
// - 40 logged hosts, 20 live and 20 dead, against `fping -a -r 1` on the 40;
// - a /24 with 20 live addresses (253 logged hosts), against fping -g.
// Run as root: npm run bench:ping (RUNS=5)
import { execa } from 'execa';
import { makeTestNet } from '../test/netns.js';
import { lab, tempLab, userNetworking } from '../test/helpers.js';
import { Inventory } from '../src/inventory/store.js';
import { labPaths } from '../src/project/paths.js';
import { acceptCallback } from '../src/inventory/boots.js';
import { median } from './stats.js';

const RUNS = Number(process.env.RUNS ?? 5);
const subnet = '10.199.9';
// 20 live addresses spread over the range; the 40 of the first sweep are those and the 20 after them.
const live = Array.from({ length: 20 }, (_, i) => 7 + i * 12);
const forty = [...live, ...live.map((n) => n + 1)];
const all = Array.from({ length: 253 }, (_, i) => i + 2); // .1 is the prober

interface Sweep {
  label: string;
  run: () => Promise<number>; // how many it found live
}

const tn = await makeTestNet({ subnet, live, dead: forty.filter((n) => !live.includes(n)) });
const labs: { dir: string; cleanup: () => void }[] = [];
/** A lab whose inventory has these hosts logged (called back, not declared). */
async function labOf(addresses: number[]): Promise<string> {
  const l = await tempLab(userNetworking);
  labs.push(l);
  await new Inventory(labPaths(l.dir)).update((data, log) => {
    for (const n of addresses) acceptCallback(data, log, { host: `h-${n}`, ip: `${subnet}.${n}`, mac: `52:54:00:00:02:${n.toString(16).padStart(2, '0')}` }, { bridged: false, peer: `${subnet}.${n}`, undeclared: Infinity });
  });
  return l.dir;
}
const labSweep = (label: string, dir: string): Sweep => ({
  label,
  run: async () => {
    const r = await lab(['hosts', 'filter', '--lab', dir, '--json'], { netns: tn.prober });
    return (JSON.parse(r.stdout) as { alive: boolean }[]).filter((x) => x.alive).length;
  },
});
const fping = (label: string, args: string[]): Sweep => ({
  label,
  run: async () => {
    const r = await execa('ip', ['netns', 'exec', tn.prober, 'fping', ...args], { reject: false });
    return String(r.stdout).trim().split('\n').filter((l) => l && !l.endsWith('.1')).length;
  },
});

try {
  const fortyAddresses = forty.map((n) => `${subnet}.${n}`);
  const sweeps: { title: string; base: string; sweeps: Sweep[] }[] = [
    {
      title: '40 logged hosts, 20 live and 20 dead',
      base: 'fping -a -r 1',
      sweeps: [
        labSweep('`lab hosts filter` (1 try, 1 s timeout)', await labOf(forty)),
        fping('`fping -a -r 1` (2 tries: 500 ms, then 750 ms)', ['-a', '-r', '1', ...fortyAddresses]),
        fping('`fping -a -r 0 -t 1000` (1 try, 1 s: like for like)', ['-a', '-r', '0', '-t', '1000', ...fortyAddresses]),
      ],
    },
    {
      title: `${subnet}.0/24, 20 live (253 logged hosts)`,
      base: 'fping -a -g',
      sweeps: [
        labSweep('`lab hosts filter` (1 try, 1 s timeout)', await labOf(all)),
        fping('`fping -a -g` (defaults: 4 tries, 500 ms, backoff 1.5)', ['-a', '-g', `${subnet}.0/24`]),
        fping('`fping -a -r 1 -g`', ['-a', '-r', '1', '-g', `${subnet}.0/24`]),
        fping('`fping -a -r 0 -t 1000 -g` (1 try, 1 s: like for like)', ['-a', '-r', '0', '-t', '1000', '-g', `${subnet}.0/24`]),
      ],
    },
  ];
  const times = new Map<Sweep, number[]>(sweeps.flatMap((s) => s.sweeps.map((w) => [w, [] as number[]])));
  for (let i = 0; i < RUNS; i++) {
    for (const s of sweeps) {
      for (const w of s.sweeps) {
        const t = performance.now();
        const found = await w.run();
        times.get(w)!.push((performance.now() - t) / 1000);
        if (found !== live.length) throw new Error(`${w.label}: found ${found} live hosts, expected ${live.length}`);
      }
    }
  }
  console.log(`median of ${RUNS} interleaved runs, wall time\n`);
  for (const s of sweeps) {
    const base = median(times.get(s.sweeps.find((w) => w.label.startsWith(`\`${s.base}\``))!)!);
    console.log(`${s.title}\n\n| sweep | time | vs \`${s.base}\` |\n|---|---|---|`);
    for (const w of s.sweeps) console.log(`| ${w.label} | ${median(times.get(w)!).toFixed(2)} s | ${(median(times.get(w)!) / base).toFixed(2)} x |`);
    console.log('');
  }
} finally {
  for (const l of labs) l.cleanup();
  await tn.cleanup();
}
