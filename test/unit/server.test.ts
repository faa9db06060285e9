import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync, writeFileSync, statSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { tempLab, serve, userNetworking, eventually, type Served } from './helpers.js';
import type { HostRecord } from '../src/inventory/types.js';
import ssh2 from 'ssh2';
import { generateEd25519 } from '../src/project/secrets.js';

let dir: string;
let cleanup: () => void;
let server: Served;
let token: string;
let hostKey: string;

before(async () => {
  ({ dir, cleanup } = await tempLab(userNetworking));
  server = await serve(dir);
  token = readFileSync(path.join(dir, 'inventory', 'callback-token'), 'utf8').trim();
  // A real ed25519 public key to send as a host key.
  hostKey = readFileSync(path.join(dir, 'inventory', 'lab_ed25519.pub'), 'utf8').trim();
});

after(async () => {
  await server?.stop();
  assert.equal(existsSync(path.join(dir, 'inventory', 'server.json')), false, 'server.json removed on stop');
  cleanup?.();
});

const db = () => readFileSync(path.join(dir, 'inventory', 'db.json'), 'utf8');
const bootLog = () => (existsSync(path.join(dir, 'inventory', 'booted.log')) ? readFileSync(path.join(dir, 'inventory', 'booted.log'), 'utf8') : '');
const hosts = async () => (await (await fetch(`${server.url}/api/hosts`)).json()) as HostRecord[];

test('secrets are made on first use, mode 0600', () => {
  for (const f of ['callback-token', 'lab_ed25519']) {
    assert.equal(statSync(path.join(dir, 'inventory', f)).mode & 0o777, 0o600, f);
  }
  assert.match(token, /^[A-Za-z0-9_-]{32}$/);
  assert.match(readFileSync(path.join(dir, 'inventory', 'lab_ed25519'), 'utf8'), /^-----BEGIN OPENSSH PRIVATE KEY-----/);
});

test('every lab key pair made parses, though ssh2 botches one ed25519 key in 256 (mscdex/ssh2#1390)', () => {
  for (let i = 0; i < 2000; i++) {
    const parsed = ssh2.utils.parseKey(generateEd25519('lab@test'));
    assert.ok(!(parsed instanceof Error), `key ${i}: ${String(parsed)}`);
  }
});

test('GET /ks/<host> renders that host\'s kickstart and marks it installing', async () => {
  const res = await fetch(`${server.url}/ks/demo-worker-1`, { headers: { 'X-RHN-Provisioning-MAC-0': 'eth0 52:54:00:AA:BB:CC' } });
  assert.equal(res.status, 200);
  const ks = await res.text();
  const port = new URL(server.url).port;
  assert.match(ks, /^# lab kickstart for demo-worker-1 \(env demo, role worker, image mini\)/);
  assert.match(ks, /^network --bootproto=dhcp --hostname=demo-worker-1$/m);
  assert.ok(ks.includes(`sshkey --username=root "${hostKey}"`), 'the lab key');
  assert.ok(ks.includes(`http://10.0.2.2:${port}/booted?host=demo-worker-1&token=${token}&mac=`), 'callback URL with token, as guests see the server');
  const h = (await hosts()).find((x) => x.name === 'demo-worker-1')!;
  assert.equal(h.state, 'installing');
  assert.equal(h.mac, '52:54:00:aa:bb:cc');
  assert.equal(h.env, 'demo');
});

/** A GET with the path exactly as written (fetch would resolve dot segments such as %2e%2e before sending). */
function rawGet(url: string, rawPath: string): Promise<{ status: number; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    http
      .get({ host: u.hostname, port: u.port, path: rawPath }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

test('unknown hosts and path tricks get 404 with a message', async () => {
  for (const p of ['/ks/demo-worker-99', '/ks/..%2F..%2Fetc%2Fpasswd', '/ks/%2e%2e', '/ks/a%00b', '/pxe/..%2F..%2Fenvironments.ts', '/ks/../environments.ts']) {
    const res = await rawGet(server.url, p);
    assert.equal(res.status, 404, p);
    const body = JSON.parse(res.body) as { error: string };
    assert.ok(body.error.length > 0);
    assert.doesNotMatch(JSON.stringify(body), /defineLab|root:x:/);
  }
});

test('callbacks with a bad or missing token, or malformed fields, change nothing', async () => {
  await fetch(`${server.url}/booted?host=demo-lb-1&mac=52:54:00:00:00:01&token=${token}`); // something recorded first
  const before = [db(), bootLog()];
  const cases: [string, RequestInit | undefined, number][] = [
    [`/booted?host=demo-lb-1&mac=52:54:00:00:00:01`, undefined, 403],
    [`/booted?host=demo-lb-1&mac=52:54:00:00:00:01&token=wrong`, undefined, 403],
    [`/booted?host=demo-lb-1&mac=52:54:00:00:00:01&token=${token}x`, undefined, 403],
    [`/booted?host=demo-lb-1&mac=52:54:00:00:00:01&token=${token.slice(0, -1)}`, { method: 'POST', body: new URLSearchParams({ hostkey: hostKey }) }, 403],
    [`/booted?host=../etc&mac=52:54:00:00:00:01&token=${token}`, undefined, 400],
    [`/booted?host=demo-lb-1&mac=52:54:00:00:00&token=${token}`, undefined, 400],
    [`/booted?host=demo-lb-1&token=${token}`, undefined, 400],
    [`/booted?host=demo-lb-1&mac=52:54:00:00:00:01&ip=10.0.2.300&token=${token}`, undefined, 400],
    [`/booted?host=demo-lb-1&mac=52:54:00:00:00:01&token=${token}`, { method: 'POST', body: new URLSearchParams({ hostkey: 'ssh-ed25519 bm90IGEga2V5' }) }, 400],
    [`/booted?host=demo-lb-1&mac=52:54:00:00:00:01&token=${token}`, { method: 'POST', body: new URLSearchParams({ hostkey: 'ssh-rsa ' + hostKey.split(' ')[1] }) }, 400],
    // A key sent unencoded in a form body: its '+' arrives as a space and cuts it short.
    [`/booted?host=demo-lb-1&mac=52:54:00:00:00:01&token=${token}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `hostkey=ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJA4EU+mKDcuLAd7CRgTvAU4TAthEfsVYUurZP7n1kWN` }, 400],
  ];
  for (const [p, init, status] of cases) {
    const res = await fetch(`${server.url}${p}`, init);
    assert.equal(res.status, status, p);
  }
  assert.deepEqual([db(), bootLog()], before, 'nothing recorded');
});

test('a good callback records the host, its host key, and one boot log line', async () => {
  const linesBefore = bootLog().split('\n').filter(Boolean).length;
  const res = await fetch(`${server.url}/booted?host=demo-worker-1&mac=52-54-00-AA-BB-CC&ip=10.0.2.15&token=${token}`, {
    method: 'POST',
    body: new URLSearchParams({ hostkey: `${hostKey}` }),
  });
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { ok: true, host: 'demo-worker-1', bootCount: 1, declared: true });
  const h = (await hosts()).find((x) => x.name === 'demo-worker-1')!;
  assert.equal(h.state, 'up');
  assert.equal(h.ip, '10.0.2.15');
  assert.equal(h.mac, '52:54:00:aa:bb:cc');
  assert.equal(h.hostKey, hostKey.split(' ').slice(0, 2).join(' '));
  assert.equal(h.role, 'worker');
  const lines = bootLog().trim().split('\n');
  assert.equal(lines.length, linesBefore + 1);
  assert.match(lines.at(-1)!, /^\d{4}-\d\d-\d\dT[\d:.]+Z demo-worker-1 10\.0\.2\.15 52:54:00:aa:bb:cc$/);
  // A reboot calls back again: same host, one more boot.
  const again = await fetch(`${server.url}/booted?host=demo-worker-1&mac=52:54:00:aa:bb:cc&ip=10.0.2.15&token=${token}`);
  assert.equal(((await again.json()) as { bootCount: number }).bootCount, 2);
});

test('the host key may come as a plain-text body, as busybox wget sends it', async () => {
  const res = await fetch(`${server.url}/booted?host=demo-worker-3&mac=52:54:00:aa:bb:03&ip=10.0.2.15&token=${token}`, {
    method: 'POST',
    headers: { 'content-type': 'text/plain' },
    body: `${hostKey}\n`,
  });
  assert.equal(res.status, 200);
  assert.equal((await hosts()).find((x) => x.name === 'demo-worker-3')!.hostKey, hostKey.split(' ').slice(0, 2).join(' '));
});

test('a host made by hand with the lab token is recorded without env and role; ip defaults to the caller', async () => {
  const res = await fetch(`${server.url}/booted?host=Handmade&mac=52:54:00:12:34:56`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(res.status, 200);
  const h = (await hosts()).find((x) => x.name === 'handmade')!;
  assert.equal(h.env, undefined);
  assert.equal(h.role, undefined);
  assert.equal(h.ip, '127.0.0.1');
});

test('PXE files: per-MAC pxelinux config pointing at the kickstart, default boots the disk, iPXE picks by MAC', async () => {
  const data = JSON.parse(db()) as { leases: Record<string, { mac: string }> };
  const mac = data.leases['demo-worker-2']!.mac;
  const res = await fetch(`${server.url}/pxe/pxelinux.cfg/01-${mac.replace(/:/g, '-')}`);
  assert.equal(res.status, 200);
  const cfg = await res.text();
  const port = new URL(server.url).port;
  assert.match(cfg, new RegExp(`APPEND initrd=images/mini/initrd.img inst.ks=http://10.0.2.2:${port}/ks/demo-worker-2 ks=http://10.0.2.2:${port}/ks/demo-worker-2 `));
  assert.match(await (await fetch(`${server.url}/pxe/pxelinux.cfg/default`)).text(), /LOCALBOOT 0/);
  const ipxe = await (await fetch(`${server.url}/pxe/boot.ipxe`)).text();
  assert.ok(ipxe.includes(`iseq \${net0/mac} ${mac} && chain --autofree http://10.0.2.2:${port}/pxe/ipxe/demo-worker-2.ipxe`));
  const host = await (await fetch(`${server.url}/pxe/ipxe/demo-worker-2.ipxe`)).text();
  assert.match(host, /^kernel tftp:\/\/\$\{next-server\}\/images\/mini\/vmlinuz initrd=initrd.img inst.ks=/m);
});

test('the server follows edits of environments.ts and keeps the last good config on a broken one', async () => {
  const file = path.join(dir, 'environments.ts');
  const good = readFileSync(file, 'utf8');
  try {
    const edited = good.replace("{ role: 'lb', image: 'mini', count: 1,", "{ role: 'lb', image: 'mini', count: 2,");
    assert.notEqual(edited, good, 'the scaffold has the lb group this test edits');
    writeFileSync(file, edited);
    await eventually(async () => (await fetch(`${server.url}/ks/demo-lb-2`)).status === 200, 10_000, 'demo-lb-2 to appear');
    writeFileSync(file, good.replace('export default defineLab({', 'export default defineLab({{'));
    await eventually(() => server.output().includes('kept the previous config'), 10_000, 'the broken edit to be reported');
    assert.equal((await fetch(`${server.url}/ks/demo-lb-2`)).status, 200, 'still on the last good config');
  } finally {
    writeFileSync(file, good);
  }
});

test('reads of the inventory during a burst of callbacks lose none of them', async () => {
  const before = (await hosts()).length;
  const calls = Array.from({ length: 200 }, (_, i) =>
    fetch(`${server.url}/booted?host=burst-${i}&mac=52:54:00:10:00:${(i % 256).toString(16).padStart(2, '0')}&ip=10.0.3.${i}&token=${token}`),
  );
  const reads = Array.from({ length: 200 }, () => fetch(`${server.url}/api/hosts`).then((r) => r.json()));
  const done = await Promise.all([...calls, ...reads]);
  assert.ok(done.slice(0, 200).every((r) => (r as Response).status === 200));
  assert.equal((await hosts()).length, before + 200);
});
