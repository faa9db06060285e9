// The dashboard with 500 hosts: an environment of 10 balancers, 250
// workers and 240 API hosts (a group holds at most 250), all recorded, in Debian's headless Chromium at 1280 px, measured
// from the page's side:
// - first picture: from navigation until all 500 rows and 500 slots are shown;
// - a boot storm of the fleet while the page is open (500 callbacks from 20
//   clients, every host booting again): how long a callback takes to show in
//   its row (from its answer until the row's boot count changes, for one host
//   in ten), and the longest stretch the page's main thread was busy
//   (frames not drawn) meanwhile;
// - bytes the page received over its event stream during the storm.
// The server's side of such a storm is bench:storm's. Median of RUNS (5).
// npm run bench:dashboard
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { chromium } from 'playwright-core';
import { tempLab, serve, userNetworking, callbackToken } from '../test/helpers.js';
import { Inventory } from '../src/inventory/store.js';
import { labPaths } from '../src/project/paths.js';
import { acceptCallback } from '../src/inventory/boots.js';
import { median } from './stats.js';

const RUNS = Number(process.env.RUNS ?? 5);
const GROUPS = [
  { role: 'lb', count: 10, service: 'lb', version: '1' },
  { role: 'worker', count: 250, service: 'hello', version: '1.0.0' },
  { role: 'api', count: 240, service: 'hello', version: '1.0.0' },
];
const CLIENTS = 20;

const hosts = GROUPS.flatMap((g) => Array.from({ length: g.count }, (_, i) => ({ name: `fleet-${g.role}-${i + 1}`, group: g })));
const names = hosts.map((h) => h.name);
const mac = (i: number) => `52:54:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
const ip = (i: number) => `10.1.${i >> 8}.${i & 255}`;

interface Outcome {
  firstMs: number;
  showP50: number;
  showMax: number;
  busyMs: number;
  kb: number;
}

async function run(): Promise<Outcome> {
  const groups = GROUPS.map((g) => `        { role: '${g.role}', image: 'mini', ${g.role === 'lb' ? `count: ${g.count}` : `min: 10, max: ${g.count}`}, service: '${g.service}', version: '${g.version}' },\n`).join('');
  const fleet = `    fleet: {\n      groups: [\n${groups}      ],\n    },\n`;
  const { dir, cleanup } = await tempLab((s) => userNetworking(s).replace('  environments: {\n', `  environments: {\n${fleet}`));
  const paths = labPaths(dir);
  await new Inventory(paths).update((data, log) => {
    hosts.forEach(({ name, group }, i) => {
      acceptCallback(data, log, { host: name, ip: ip(i), mac: mac(i) }, { bridged: false, peer: '127.0.0.1', undeclared: Infinity });
      Object.assign(data.hosts[name]!, { env: 'fleet', role: group.role, state: 'up', serviceVersion: group.version });
    });
  });
  const server = await serve(dir);
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    let bytes = 0;
    let counting = false;
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Network.enable');
    cdp.on('Network.dataReceived', (e: { dataLength: number }) => {
      if (counting) bytes += e.dataLength;
    });
    const t0 = Date.now();
    await page.goto(`${server.url}/`);
    await page.waitForFunction((n) => document.querySelectorAll('tr[data-host]').length === n && document.querySelectorAll('[data-env="fleet"] .slot').length === n, names.length, { timeout: 60_000, polling: 'raf' });
    const firstMs = Date.now() - t0;

    // The longest time between two frames while the storm runs: what the page's own work costs.
    // A string, not a function: tsx's name-keeping helper does not exist in the page.
    await page.evaluate(`(() => {
      window.gap = 0;
      window.last = performance.now();
      window.on = true;
      const frame = (t) => {
        window.gap = Math.max(window.gap, t - window.last);
        window.last = t;
        if (window.on) requestAnimationFrame(frame);
      };
      requestAnimationFrame(frame);
    })()`);
    counting = true;
    const key = readFileSync(paths.sshPublicKey, 'utf8').trim();
    const shown: number[] = [];
    let next = 0;
    const client = async () => {
      while (next < names.length) {
        const i = next++;
        const r = await fetch(`${server.url}/booted?host=${names[i]}&mac=${mac(i)}&ip=${ip(i)}&token=${callbackToken(dir, names[i]!)}`, { method: 'POST', body: new URLSearchParams({ hostkey: key }) });
        if (r.status !== 200) throw new Error(`callback of ${names[i]}: ${r.status} ${await r.text()}`);
        if (i % 10 === 0) {
          const answered = Date.now();
          await page.waitForFunction((h) => document.querySelector(`tr[data-host="${h}"] td:nth-child(7)`)?.textContent === '2', names[i], { timeout: 30_000, polling: 'raf' });
          shown.push(Date.now() - answered);
        }
      }
    };
    await Promise.all(Array.from({ length: CLIENTS }, client));
    await page.waitForFunction(() => [...document.querySelectorAll('tr[data-host] td:nth-child(7)')].every((td) => td.textContent === '2'), undefined, { timeout: 30_000 });
    counting = false;
    const busyMs = Number(await page.evaluate('window.on = false, window.gap'));
    return { firstMs, showP50: median(shown), showMax: Math.max(...shown), busyMs, kb: bytes / 1024 };
  } finally {
    await browser.close();
    await server.stop();
    cleanup();
  }
}

const outcomes: Outcome[] = [];
for (let i = 0; i < RUNS; i++) outcomes.push(await run());
const m = (f: (o: Outcome) => number) => median(outcomes.map(f));
console.log(`dashboard with ${names.length} hosts, Chromium ${cpus().length} cores, median of ${RUNS}\n`);
console.log('| what | figure |\n|---|---|');
console.log(`| first picture (navigation to 500 rows and 500 slots shown) | ${Math.round(m((o) => o.firstMs))} ms |`);
console.log(`| a callback shown in its row, during a storm of ${names.length} from ${CLIENTS} clients: median / worst | ${Math.round(m((o) => o.showP50))} ms / ${Math.round(m((o) => o.showMax))} ms |`);
console.log(`| longest frame gap during the storm (the page busy) | ${Math.round(m((o) => o.busyMs))} ms |`);
console.log(`| received over the event stream during the storm | ${Math.round(m((o) => o.kb))} KB |`);
