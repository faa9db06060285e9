// Boot storm: 1,000 callbacks from 100 concurrent clients against `lab serve`
// on loopback, while 100 dashboard event clients come and go (each connects,
// takes its first picture, hangs up, and again). Checks that none is lost
// (1,000 hosts, 1,000 log lines) and reports callbacks per second and
// latency. npm run bench:storm (EVENT_CLIENTS=0 for the storm alone)
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import autocannon from 'autocannon';
import { tempLab, serve, userNetworking, callbackToken } from '../test/helpers.js';

const TOTAL = Number(process.env.TOTAL ?? 1000);
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 100);
const EVENT_CLIENTS = Number(process.env.EVENT_CLIENTS ?? 100);

const { dir, cleanup } = await tempLab(userNetworking);
// The storm's hosts are made up (not declared): the server takes that many.
const server = await serve(dir, { args: ['--undeclared', String(TOTAL)] });

/** Event clients that connect, read a little, hang up and come back, until stopped; how many sessions they had. */
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

try {
  const tokens = Array.from({ length: TOTAL }, (_, i) => callbackToken(dir, `storm-${i}`));
  const events = churn(Number(new URL(server.url).port), EVENT_CLIENTS);
  const hostKey = readFileSync(path.join(dir, 'inventory', 'lab_ed25519.pub'), 'utf8').trim();
  let n = 0;
  const result = await autocannon({
    url: server.url,
    connections: CONNECTIONS,
    amount: TOTAL,
    requests: [
      {
        method: 'POST',
        setupRequest: (req: autocannon.Request) => {
          const i = n++;
          const mac = `52:54:00:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
          return {
            ...req,
            path: `/booted?host=storm-${i}&mac=${mac}&ip=10.0.${(i >> 8) & 255}.${i & 255}&token=${tokens[i]}`,
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
            body: new URLSearchParams({ hostkey: hostKey }).toString(),
          };
        },
      },
    ],
  });
  const sessions = await events.stop();
  const db = JSON.parse(readFileSync(path.join(dir, 'inventory', 'db.json'), 'utf8')) as { hosts: Record<string, unknown> };
  const hosts = Object.keys(db.hosts).filter((h) => h.startsWith('storm-')).length;
  const lines = readFileSync(path.join(dir, 'inventory', 'booted.log'), 'utf8').trim().split('\n').length;
  const seconds = result.duration;
  console.log(`boot storm: ${TOTAL} callbacks, ${CONNECTIONS} concurrent clients; ${EVENT_CLIENTS} event clients coming and going (${sessions} sessions)`);
  console.log(`  answered 2xx:    ${result['2xx']}  (non-2xx ${result.non2xx}, errors ${result.errors}, timeouts ${result.timeouts})`);
  console.log(`  recorded:        ${hosts} hosts, ${lines} boot log lines${hosts === TOTAL && lines === TOTAL ? '  (none lost)' : '  LOST SOME'}`);
  console.log(`  callbacks/s:     ${(result['2xx'] / seconds).toFixed(0)}  (${seconds.toFixed(2)} s in all)`);
  console.log(`  latency:         p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms, max ${result.latency.max} ms`);
  if (hosts !== TOTAL || lines !== TOTAL) process.exitCode = 1;
} finally {
  await server.stop();
  cleanup();
}
