// Boot storm: 1,000 callbacks (POST with a host key, each with its own
// host's token) from 100 keep-alive clients (autocannon) on loopback, side
// by side in one run, interleaved:
// - `lab serve` on an empty inventory;
// - `lab serve` on an inventory of 5,000 hosts and 5,000 events already;
// - nginx (Debian's, extracted, not installed) writing the same requests to
//   an access log, the way the seed project recorded boots: raw logging,
//   against lab's authenticated, validated recording;
// - node's own HTTP server, which lab serve runs on, answering as lab does
//   and recording nothing (node-http-floor.ts, warmed up as lab serve is):
//   the floor under lab serve's figures on this machine;
// - the same two, warm: 200 callbacks of other hosts first, one at a time,
//   not timed (a server that has been up a while has served);
// every storm starts once lab serve has logged that its warm-up is done, as
// guests' callbacks come tens of seconds after the server starts, and the
// client is warm too (clientWarmUp: autocannon's own first run in this
// process is not any server's latency);
// - with EVENT_CLIENTS=N, also `lab serve` while N dashboard event clients
//   come and go (each connects, takes its first picture, hangs up, again).
// Each run checks that none was lost (every host recorded, every boot log
// or access log line written). Rate: 2xx answers over the storm's wall time.
// npm run bench:storm (RUNS=5; ONLY=text runs the scenarios whose label holds it; SERVER_PROFILE=dir writes lab serve's CPU profiles there)
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { cpus, homedir, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { execa } from 'execa';
import { tempLab, serve, userNetworking, callbackToken, freePort, eventually } from '../test/helpers.js';
import { Inventory } from '../src/inventory/store.js';
import { labPaths } from '../src/project/paths.js';
import { acceptCallback } from '../src/inventory/boots.js';
import { median } from './stats.js';

const RUNS = Number(process.env.RUNS ?? 5);
const TOTAL = Number(process.env.TOTAL ?? 1000);
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 100);
const EVENT_CLIENTS = Number(process.env.EVENT_CLIENTS ?? 0);
const PREFILL = 5000;
const WARM = 200;
const profile = process.env.SERVER_PROFILE;

interface Outcome {
  rate: number;
  p50: number;
  p99: number;
  lost: number;
}

const mac = (i: number) => `52:54:00:${[i >> 16, i >> 8, i].map((b) => (b & 255).toString(16).padStart(2, '0')).join(':')}`;

/** The storm itself: TOTAL callbacks of hosts storm-0.., each with its token and a host key. */
async function storm(url: string, token: (i: number) => string, hostKey: string): Promise<Omit<Outcome, 'lost'> & { ok: number }> {
  let n = 0;
  // autocannon reports on its one-second ticks: the storm's end is its last answer, not its report.
  let last = 0;
  const started = performance.now();
  const result = await autocannon({
    url,
    connections: CONNECTIONS,
    amount: TOTAL,
    requests: [
      {
        method: 'POST',
        setupRequest: (req: autocannon.Request) => {
          const i = n++;
          return {
            ...req,
            path: `/booted?host=storm-${i}&mac=${mac(i)}&ip=10.0.${(i >> 8) & 255}.${i & 255}&token=${token(i)}`,
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
            body: new URLSearchParams({ hostkey: hostKey }).toString(),
          };
        },
        onResponse: () => {
          last = performance.now();
        },
      },
    ],
  });
  const seconds = (last - started) / 1000;
  if (result.errors || result.timeouts || result.non2xx) throw new Error(`storm: ${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts`);
  return { ok: result['2xx'], rate: result['2xx'] / seconds, p50: result.latency.p50, p99: result.latency.p99 };
}

/**
 * autocannon warmed up in this process before any timed storm, on a
 * throwaway server of its own: it times a request from the moment it
 * writes it, and writes each connection's first request before connecting.
 * Cold, building its 100 clients took the bench ~30 ms of its one thread,
 * which the first wave of whichever storm ran first counted as waiting for
 * an answer (a trace of lab serve saw that storm's first connection 41 ms
 * after the storm began, and answered the whole wave 27 ms after that).
 */
async function clientWarmUp(rounds = 3): Promise<void> {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end('{"ok":true}\n'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = server.address() as net.AddressInfo;
    for (let i = 0; i < rounds; i++) await storm(`http://127.0.0.1:${port}`, (n) => `t${n}`, 'ssh-ed25519 AAAA');
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

/** Event clients that connect, read a little, hang up and come back, until stopped. */
function churn(port: number, clients: number): { stop: () => Promise<number> } {
  let running = true;
  let sessions = 0;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => s.write(`GET /api/events HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`));
      const bye = () => (s.destroy(), resolve());
      s.once('data', () => setTimeout(bye, 20 + Math.random() * 200));
      s.on('error', bye);
      setTimeout(bye, 2000);
    });
  const loops = Array.from({ length: clients }, async () => {
    while (running) {
      await one();
      sessions++;
    }
  });
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
      return sessions;
    },
  };
}

/** warm: 200 callbacks of other hosts first, one at a time and not timed, as a server that has been up a while has served. */
async function labRun(prefill: number, eventClients: number, warm = false): Promise<Outcome> {
  const { dir, cleanup } = await tempLab(userNetworking);
  try {
    const paths = labPaths(dir);
    if (prefill > 0) {
      // Hosts made by hand (as --undeclared allows), each with its callback event: db.json as a long-lived lab has it.
      await new Inventory(paths).update((data, log) => {
        for (let i = 0; i < prefill; i++) {
          acceptCallback(data, log, { host: `old-${i}`, ip: `10.1.${i >> 8}.${i & 255}`, mac: mac(0x800000 + i) }, { bridged: false, peer: '127.0.0.1', undeclared: Infinity });
        }
      });
    }
    const server = await serve(dir, {
      args: ['--undeclared', String(TOTAL + prefill + WARM)],
      ...(profile ? { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profile}`] } : {}),
    });
    let r: Awaited<ReturnType<typeof storm>>;
    try {
      // Guests call back tens of seconds after the server starts, by when it has run its warm-up (src/server/warm-up.ts): the storm comes after it too.
      await eventually(() => /ready for a boot storm/.test(server.output()), 30_000, 'lab serve to finish its warm-up');
      const tokens = Array.from({ length: TOTAL }, (_, i) => callbackToken(dir, `storm-${i}`));
      const events = eventClients > 0 ? churn(Number(new URL(server.url).port), eventClients) : undefined;
      const key = readFileSync(paths.sshPublicKey, 'utf8').trim();
      for (let w = 0; warm && w < WARM; w++) {
        const h = `warm-${w}`;
        const res = await fetch(`${server.url}/booted?host=${h}&mac=${mac(0x700000 + w)}&ip=10.9.0.1&token=${callbackToken(dir, h)}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ hostkey: key }).toString() });
        if (res.status !== 200) throw new Error(`warm-up callback: ${res.status}`);
      }
      r = await storm(server.url, (i) => tokens[i]!, key);
      await events?.stop();
    } finally {
      await server.stop();
    }
    const db = JSON.parse(readFileSync(paths.db, 'utf8')) as { hosts: Record<string, unknown> };
    const hosts = Object.keys(db.hosts).filter((h) => h.startsWith('storm-')).length;
    const lines = readFileSync(paths.bootLog, 'utf8').split('\n').filter((l) => / storm-\d+ /.test(l)).length;
    return { ...r, lost: TOTAL - Math.min(hosts, lines, r.ok) };
  } finally {
    cleanup();
  }
}

/** Debian's nginx binary, extracted from its package into a cache (not installed: no service started, nothing on port 80). */
async function nginxBinary(): Promise<string> {
  const dir = path.join(process.env.XDG_CACHE_HOME ?? path.join(homedir(), '.cache'), 'lab', 'bench', 'nginx');
  const bin = path.join(dir, 'root', 'usr', 'sbin', 'nginx');
  if (existsSync(bin)) return bin;
  mkdirSync(dir, { recursive: true });
  await execa('apt-get', ['download', '-qq', 'nginx'], { cwd: dir });
  const deb = readdirSync(dir).find((f) => /^nginx_.*\.deb$/.test(f));
  if (!deb) throw new Error(`apt-get download nginx left no package in ${dir}`);
  await execa('dpkg-deb', ['-x', path.join(dir, deb), path.join(dir, 'root')]);
  return bin;
}

async function nginxRun(bin: string): Promise<Outcome> {
  const dir = mkdtempSync(path.join(tmpdir(), 'lab-bench-nginx-'));
  const port = await freePort();
  const log = path.join(dir, 'access.log');
  // One worker, as lab serve is one process; the line booted.log has (time, name, address, MAC).
  writeFileSync(
    path.join(dir, 'nginx.conf'),
    `daemon off;
user root;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
events { worker_connections 1024; }
http {
  log_format boots '$time_iso8601 $arg_host $arg_ip $arg_mac';
  access_log ${log} boots;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  server {
    listen 127.0.0.1:${port};
    location /booted { return 200 "ok\\n"; }
  }
}
`,
  );
  const child = execa(bin, ['-p', dir, '-e', path.join(dir, 'error.log'), '-c', path.join(dir, 'nginx.conf')], { reject: false });
  try {
    for (let i = 0; ; i++) {
      const up = await new Promise<boolean>((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => (s.destroy(), resolve(true)));
        s.on('error', () => resolve(false));
      });
      if (up) break;
      if (i > 100 || child.exitCode !== null) throw new Error(`nginx did not start: ${readFileSync(path.join(dir, 'error.log'), 'utf8')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const r = await storm(`http://127.0.0.1:${port}`, (i) => `t${i}`, 'ssh-ed25519 AAAA');
    child.kill('SIGQUIT'); // graceful: the log is flushed
    await child;
    const lines = readFileSync(log, 'utf8').split('\n').filter((l) => / storm-\d+ /.test(l)).length;
    return { ...r, lost: TOTAL - Math.min(lines, r.ok) };
  } finally {
    child.kill();
    await child;
    rmSync(dir, { recursive: true, force: true });
  }
}

/** node's HTTP server answering only (node-http-floor.ts), in a process of its own as lab serve is. */
async function nodeRun(): Promise<Outcome> {
  const child = execa(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./node-http-floor.ts', import.meta.url))], { reject: false });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /serving on (\S+)/.exec(out);
        if (m) resolve(m[1]!);
      });
      void child.then((r) => reject(new Error(`node-http-floor.ts exited: ${r.stderr}`)));
    });
    const r = await storm(url, (i) => `t${i}`, 'ssh-ed25519 AAAA');
    // It records nothing: what is lost is what was not answered.
    return { ...r, lost: TOTAL - r.ok };
  } finally {
    child.kill('SIGTERM');
    await child;
  }
}

const nginx = await nginxBinary();
const nginxVersion = (await execa(nginx, ['-v'], { reject: false })).stderr.replace('nginx version: ', '').trim();
const all: [string, () => Promise<Outcome>][] = [
  ['`lab serve`, empty inventory', () => labRun(0, 0)],
  [`\`lab serve\`, ${PREFILL.toLocaleString('en')} hosts and events recorded`, () => labRun(PREFILL, 0)],
  [`\`lab serve\`, empty inventory, warm (${WARM} callbacks before)`, () => labRun(0, 0, true)],
  [`\`lab serve\`, ${PREFILL.toLocaleString('en')} hosts, warm`, () => labRun(PREFILL, 0, true)],
  ...(EVENT_CLIENTS > 0 ? ([[`\`lab serve\` + ${EVENT_CLIENTS} event clients`, () => labRun(0, EVENT_CLIENTS)]] as [string, () => Promise<Outcome>][]) : []),
  [`node ${process.version} http, answering only (records nothing)`, () => nodeRun()],
  [`${nginxVersion}, access log only`, () => nginxRun(nginx)],
];
// ONLY=text: the scenarios whose label holds it (ONLY=empty: the two on an empty inventory).
const scenarios = all.filter(([label]) => !process.env.ONLY || label.includes(process.env.ONLY));
const results = new Map(scenarios.map(([label]) => [label, [] as Outcome[]]));
await clientWarmUp();
for (let run = 0; run < RUNS; run++) {
  for (const [label, go] of scenarios) results.get(label)!.push(await go());
}
console.log(`boot storm: ${TOTAL} callbacks from ${CONNECTIONS} keep-alive clients, median of ${RUNS} interleaved runs, ${cpus().length} cores\n`);
console.log('| server | callbacks/s | p50 | p99 | lost | rates of the runs | p99s of the runs |\n|---|---|---|---|---|---|---|');
let lostAny = false;
for (const [label] of scenarios) {
  const rs = results.get(label)!;
  const lost = rs.reduce((n, r) => n + r.lost, 0);
  lostAny ||= lost > 0;
  console.log(`| ${label} | ${Math.round(median(rs.map((r) => r.rate)))} | ${median(rs.map((r) => r.p50))} ms | ${median(rs.map((r) => r.p99))} ms | ${lost === 0 ? 'none' : lost} | ${rs.map((r) => Math.round(r.rate)).join(', ')} | ${rs.map((r) => r.p99).join(', ')} |`);
}
if (lostAny) process.exitCode = 1;
