// Boot storm: 1,000 callbacks from 100 concurrent clients against `lab serve`
// on loopback. Checks that none is lost (1,000 hosts, 1,000 log lines) and
// reports callbacks per second and latency. npm run bench:storm
import { readFileSync } from 'node:fs';
import path from 'node:path';
import autocannon from 'autocannon';
import { tempLab, serve, userNetworking } from '../test/helpers.js';

const TOTAL = Number(process.env.TOTAL ?? 1000);
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 100);

const { dir, cleanup } = await tempLab(userNetworking);
const server = await serve(dir);
try {
  const token = readFileSync(path.join(dir, 'inventory', 'callback-token'), 'utf8').trim();
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
            path: `/booted?host=storm-${i}&mac=${mac}&ip=10.0.${(i >> 8) & 255}.${i & 255}&token=${token}`,
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
            body: new URLSearchParams({ hostkey: hostKey }).toString(),
          };
        },
      },
    ],
  });
  const db = JSON.parse(readFileSync(path.join(dir, 'inventory', 'db.json'), 'utf8')) as { hosts: Record<string, unknown> };
  const hosts = Object.keys(db.hosts).filter((h) => h.startsWith('storm-')).length;
  const lines = readFileSync(path.join(dir, 'inventory', 'booted.log'), 'utf8').trim().split('\n').length;
  const seconds = result.duration;
  console.log(`boot storm: ${TOTAL} callbacks, ${CONNECTIONS} concurrent clients`);
  console.log(`  answered 2xx:    ${result['2xx']}  (non-2xx ${result.non2xx}, errors ${result.errors}, timeouts ${result.timeouts})`);
  console.log(`  recorded:        ${hosts} hosts, ${lines} boot log lines${hosts === TOTAL && lines === TOTAL ? '  (none lost)' : '  LOST SOME'}`);
  console.log(`  callbacks/s:     ${(result['2xx'] / seconds).toFixed(0)}  (${seconds.toFixed(2)} s in all)`);
  console.log(`  latency:         p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms, max ${result.latency.max} ms`);
  if (hosts !== TOTAL || lines !== TOTAL) process.exitCode = 1;
} finally {
  await server.stop();
  cleanup();
}
