import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { lab, tempLab, userNetworking } from './helpers.js';
import { makeTestNet } from './netns.js';
import { Inventory } from '../src/inventory/store.js';
import { labPaths } from '../src/project/paths.js';
import { acceptCallback } from '../src/inventory/boots.js';
import type { HostRecord } from '../src/inventory/types.js';
import type { ProbeResult } from '../src/hosts/probe.js';

async function callBack(dir: string, hosts: { name: string; ip: string; reach?: HostRecord['reach'] }[]): Promise<void> {
  const inv = new Inventory(labPaths(dir));
  await inv.update((data, log) => {
    hosts.forEach((h, i) => {
      // Hosts made by hand (not declared): recorded as `lab serve --undeclared` would.
      const r = acceptCallback(data, log, { host: h.name, ip: h.ip, mac: `52:54:00:00:01:${i.toString(16).padStart(2, '0')}` }, { bridged: false, peer: h.ip, undeclared: Infinity });
      if (!r.ok) throw new Error(r.error);
      if (h.reach) r.host.reach = h.reach;
    });
  });
}

test('filter pings every logged host inside a test namespace: live ones stay current, dead ones go down', async () => {
  const tn = await makeTestNet({ subnet: '10.199.7', live: [11, 12, 13], dead: [50, 51] });
  const { dir, cleanup } = await tempLab(userNetworking);
  try {
    const all = [...tn.live, ...tn.dead].map((ip) => ({ name: `h-${ip.split('.').pop()}`, ip }));
    await callBack(dir, all);
    const start = Date.now();
    const r = await lab(['hosts', 'filter', '--lab', dir, '--json', '--deadline', '4000'], { netns: tn.prober });
    const took = Date.now() - start;
    assert.equal(r.exitCode, 0, r.stderr);
    const results = JSON.parse(r.stdout) as ProbeResult[];
    assert.deepEqual(results.filter((x) => x.alive).map((x) => x.target).sort(), tn.live);
    assert.deepEqual(results.filter((x) => !x.alive).map((x) => x.target).sort(), tn.dead);
    assert.ok(results.every((x) => x.method === 'icmp'));
    // Concurrent: the dead hosts time out together, not one after another (5 x 1 s in a row would be >= 5 s).
    assert.ok(took < 4500, `sweep took ${took} ms`);

    const list = await lab(['hosts', 'list', '--lab', dir, '--json']);
    assert.deepEqual((JSON.parse(list.stdout) as HostRecord[]).map((h) => h.ip).sort(), tn.live);
    const logged = await lab(['hosts', 'logged', '--lab', dir, '--json']);
    const states = Object.fromEntries((JSON.parse(logged.stdout) as HostRecord[]).map((h) => [h.ip, h.state]));
    for (const ip of tn.dead) assert.equal(states[ip], 'down');
    const table = await lab(['hosts', 'list', '--lab', dir]);
    assert.match(table.stdout, /^NAME\s+ENV\s+ROLE\s+STATE\s+IP\s+MAC\s+LAST CALLBACK\s+BOOTS$/m);
    assert.match(table.stdout, /^h-11\s+-\s+-\s+up\s+10\.199\.7\.11\s/m);

    // An address that comes back is current again after the next filter.
    await lab(['hosts', 'clear', '--lab', dir]);
    assert.equal(JSON.parse((await lab(['hosts', 'logged', '--lab', dir, '--json'])).stdout).length, 0);
    const reset = await lab(['hosts', 'reset', '--lab', dir, '--json'], { netns: tn.prober });
    assert.equal(reset.exitCode, 0, reset.stderr);
    assert.equal((JSON.parse(reset.stdout) as ProbeResult[]).length, 5, 'reset logs every host of booted.log again');
    const after = JSON.parse((await lab(['hosts', 'list', '--lab', dir, '--json'])).stdout) as HostRecord[];
    assert.deepEqual(after.map((h) => h.ip).sort(), tn.live);
    assert.ok(readFileSync(path.join(dir, 'inventory', 'booted.log'), 'utf8').includes('h-50'), 'clear keeps the boot log');
  } finally {
    cleanup();
    await tn.cleanup();
  }
});

test('a host behind a forwarded port is alive only when its SSH server answers through it', async () => {
  // A stand-in for the forward of a guest running sshd, and for one whose guest is gone
  // (QEMU accepts on the host side and then closes).
  const sshd = net.createServer((s) => s.end('SSH-2.0-dropbear_2022.83\r\n'));
  const dead = net.createServer((s) => s.end());
  await new Promise<void>((r) => sshd.listen(0, '127.0.0.1', r));
  await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
  const { dir, cleanup } = await tempLab(userNetworking);
  try {
    const port = (s: net.Server) => (s.address() as net.AddressInfo).port;
    await callBack(dir, [
      { name: 'fwd-alive', ip: '10.0.2.15', reach: { address: '127.0.0.1', port: port(sshd) } },
      { name: 'fwd-gone', ip: '10.0.2.15', reach: { address: '127.0.0.1', port: port(dead) } },
    ]);
    const r = await lab(['hosts', 'filter', '--lab', dir, '--json']);
    assert.equal(r.exitCode, 0, r.stderr);
    const byName = Object.fromEntries((JSON.parse(r.stdout) as ProbeResult[]).map((x) => [x.name, x]));
    assert.equal(byName['fwd-alive']!.alive, true);
    assert.equal(byName['fwd-alive']!.method, 'ssh-banner');
    assert.equal(byName['fwd-gone']!.alive, false);
  } finally {
    cleanup();
    sshd.close();
    dead.close();
  }
});
