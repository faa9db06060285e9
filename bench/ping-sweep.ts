// Ping sweep of a /24 with 20 live addresses, inside namespaces this script
// makes and removes: `lab hosts filter` (253 logged hosts) against fping on the
// same range. Run as root: npm run bench:ping
import { execa } from 'execa';
import { makeTestNet } from '../test/netns.js';
import { lab, tempLab, userNetworking } from '../test/helpers.js';
import { Inventory } from '../src/inventory/store.js';
import { labPaths } from '../src/project/paths.js';
import { acceptCallback } from '../src/inventory/boots.js';

const RUNS = Number(process.env.RUNS ?? 5);
const subnet = '10.199.9';
// 20 live addresses spread over the range
const live = Array.from({ length: 20 }, (_, i) => 7 + i * 12);
const all = Array.from({ length: 253 }, (_, i) => i + 2); // .1 is the prober

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function time(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return (performance.now() - t) / 1000;
}

const tn = await makeTestNet({ subnet, live, dead: [] });
const { dir, cleanup } = await tempLab(userNetworking);
try {
  const inv = new Inventory(labPaths(dir));
  await inv.update((data, log) => {
    for (const n of all) acceptCallback(data, log, { host: `h-${n}`, ip: `${subnet}.${n}`, mac: `52:54:00:00:02:${n.toString(16).padStart(2, '0')}` }, { bridged: false, peer: `${subnet}.${n}`, undeclared: Infinity });
  });
  const rows: [string, number[], string][] = [];
  const check = (found: number, what: string) => {
    if (found !== live.length) throw new Error(`${what} found ${found} live hosts, expected ${live.length}`);
  };
  const labTimes: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    labTimes.push(
      await time(async () => {
        const r = await lab(['hosts', 'filter', '--lab', dir, '--json'], { netns: tn.prober });
        check((JSON.parse(r.stdout) as { alive: boolean }[]).filter((x) => x.alive).length, 'lab');
      }),
    );
  }
  rows.push(['lab hosts filter (253 hosts, 1 s timeout, 1 try)', labTimes, 'node start + config load included']);
  for (const [label, args] of [
    ['fping -a -g (defaults: 3 retries, 500 ms, backoff 1.5)', ['-a', '-g', `${subnet}.0/24`]],
    ['fping -a -r 1 -g', ['-a', '-r', '1', '-g', `${subnet}.0/24`]],
    ['fping -a -r 0 -t 1000 -g (like for like: 1 try, 1 s)', ['-a', '-r', '0', '-t', '1000', '-g', `${subnet}.0/24`]],
  ] as const) {
    const ts: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      ts.push(
        await time(async () => {
          const r = await execa('ip', ['netns', 'exec', tn.prober, 'fping', ...args], { reject: false });
          check(String(r.stdout).trim().split('\n').filter((l) => l && !l.endsWith('.1')).length, label);
        }),
      );
    }
    rows.push([label, ts, '']);
  }
  const fpingDefault = median(rows[1]![1]);
  console.log(`ping sweep of ${subnet}.0/24, ${live.length} live, median of ${RUNS} runs (wall time)`);
  for (const [label, ts, note] of rows) {
    console.log(`${label.padEnd(58)} ${median(ts).toFixed(2)} s  (${(median(ts) / fpingDefault).toFixed(2)} x fping)${note ? `  ${note}` : ''}`);
  }
} finally {
  cleanup();
  await tn.cleanup();
}
