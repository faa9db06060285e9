import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync, writeFileSync, statSync, readdirSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { tmpdir } from 'node:os';
import { tempLab, serve, userNetworking, eventually, lab, callbackToken, type Served } from '../helpers.js';
import type { HostRecord } from '../../src/inventory/types.js';
import ssh2 from 'ssh2';
import { generateEd25519 } from '../../src/project/secrets.js';
import { keyFingerprint } from '../../src/inventory/values.js';

let dir: string;
let cleanup: () => void;
let server: Served;
let hostKey: string;

before(async () => {
  ({ dir, cleanup } = await tempLab(userNetworking));
  // Two hosts made by hand may call back (see the test of them).
  server = await serve(dir, { args: ['--undeclared', '2'] });
  // A real ed25519 public key to send as a host key.
  hostKey = readFileSync(path.join(dir, 'inventory', 'lab_ed25519.pub'), 'utf8').trim();
});

after(async () => {
  await server?.stop();
  assert.equal(existsSync(path.join(dir, 'inventory', 'server.json')), false, 'server.json removed on stop');
  cleanup?.();
});

const db = () => readFileSync(path.join(dir, 'inventory', 'db.json'), 'utf8');
const leaseMac = (host: string) => (JSON.parse(db()) as { leases: Record<string, { mac: string }> }).leases[host]!.mac;
const bootLog = () => (existsSync(path.join(dir, 'inventory', 'booted.log')) ? readFileSync(path.join(dir, 'inventory', 'booted.log'), 'utf8') : '');
const hosts = async () => (await (await fetch(`${server.url}/api/hosts`)).json()) as HostRecord[];
const token = (host: string) => callbackToken(dir, host);
/** A callback as guests send it: a POST, the host key in the body. */
const callBack = (query: string, body?: BodyInit, headers?: Record<string, string>) => fetch(`${server.url}/booted?${query}`, { method: 'POST', body, headers });

test('lab serve runs its callback path once it listens (warm-up.ts), to the end, and records, logs and keeps nothing of it', async () => {
  await eventually(() => /ready for a boot storm: the callback path ran 3000 times in \d+ ms/.test(server.output()), 30_000, 'the warm-up');
  assert.equal(bootLog(), '');
  const data = existsSync(path.join(dir, 'inventory', 'db.json')) ? (JSON.parse(db()) as { hosts: object; events: unknown[]; alerts?: unknown[] }) : undefined;
  assert.deepEqual([Object.keys(data?.hosts ?? {}), data?.events ?? [], data?.alerts ?? []], [[], [], []]);
  assert.doesNotMatch(server.output(), /warm-up|refused/);
  assert.deepEqual(await hosts(), []);
});

test("a server killed during its warm-up leaves its scratch folder in /tmp; the next server's warm-up removes it, and its own when done", async () => {
  const { dir: other, cleanup: done } = await tempLab(userNetworking);
  const scratch = (pid: number | undefined) => readdirSync(tmpdir()).filter((f) => f.startsWith(`lab-warm-up-${pid}-`));
  try {
    const first = await serve(other);
    try {
      await eventually(() => scratch(first.process.pid).length > 0, 20_000, 'the warm-up to begin');
    } finally {
      first.process.kill('SIGKILL');
      await first.process;
    }
    assert.equal(scratch(first.process.pid).length, 1, 'left behind by the killed server');
    const second = await serve(other);
    try {
      await eventually(() => /ready for a boot storm/.test(second.output()), 30_000, "the second server's warm-up");
      assert.deepEqual([...scratch(first.process.pid), ...scratch(second.process.pid)], []);
    } finally {
      await second.stop();
    }
  } finally {
    done();
  }
});

test('secrets are made on first use, mode 0600; each host gets its own callback token', () => {
  for (const f of ['callback-token', 'lab_ed25519']) {
    assert.equal(statSync(path.join(dir, 'inventory', f)).mode & 0o777, 0o600, f);
  }
  assert.equal(statSync(path.join(dir, 'inventory')).mode & 0o777, 0o700);
  const secret = readFileSync(path.join(dir, 'inventory', 'callback-token'), 'utf8').trim();
  assert.match(secret, /^[A-Za-z0-9_-]{32}$/);
  assert.match(token('demo-worker-1'), /^[A-Za-z0-9_-]{32}$/);
  assert.notEqual(token('demo-worker-1'), token('demo-worker-2'));
  assert.notEqual(token('demo-worker-1'), secret);
  assert.match(readFileSync(path.join(dir, 'inventory', 'lab_ed25519'), 'utf8'), /^-----BEGIN OPENSSH PRIVATE KEY-----/);
});

test('every lab key pair made parses, though ssh2 botches one ed25519 key in 256 (mscdex/ssh2#1390)', () => {
  for (let i = 0; i < 2000; i++) {
    const parsed = ssh2.utils.parseKey(generateEd25519('lab@test'));
    assert.ok(!(parsed instanceof Error), `key ${i}: ${String(parsed)}`);
  }
});

test("a private key's public half is read from its header as ssh2 reads it: ed25519, RSA and ECDSA from ssh-keygen; an encrypted or broken key is left to ssh2", async () => {
  const { publicKeyOf } = await import('../../src/project/openssh-key.js');
  const { execFileSync } = await import('node:child_process');
  const { mkdtempSync, rmSync } = await import('node:fs');
  const tmp = mkdtempSync(path.join(dir, 'keys-'));
  try {
    const keys = [generateEd25519('lab@test'), generateEd25519('lab@test')];
    for (const [type, extra] of [['rsa', ['-b', '2048']], ['ecdsa', ['-b', '384']], ['ed25519', []]] as const) {
      execFileSync('ssh-keygen', ['-q', '-t', type, ...extra, '-N', '', '-C', 'test', '-f', path.join(tmp, type)]);
      keys.push(readFileSync(path.join(tmp, type), 'utf8'));
    }
    for (const k of keys) {
      const parsed = ssh2.utils.parseKey(k);
      assert.ok(!(parsed instanceof Error));
      const key = Array.isArray(parsed) ? parsed[0]! : parsed;
      const mine = publicKeyOf(k);
      assert.deepEqual([mine?.type, mine?.blob.toString('base64')], [key.type, key.getPublicSSH().toString('base64')]);
    }
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'secret', '-f', path.join(tmp, 'locked')]);
    const broken = keys[0]!.replace(/\n[A-Za-z0-9+/]{10}/, '\nAAAAAAAAAA');
    for (const k of [readFileSync(path.join(tmp, 'locked'), 'utf8'), broken, 'not a key', '']) assert.equal(publicKeyOf(k), undefined);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('GET /ks/<host> inside its install window renders that host\'s kickstart, with its own token, and marks it installing', async () => {
  const closed = await fetch(`${server.url}/ks/demo-worker-1`);
  assert.equal(closed.status, 403);
  assert.match(((await closed.json()) as { error: string }).error, /lab kickstart --allow demo-worker-1/);
  assert.equal((await lab(['kickstart', '--allow', 'demo-worker-1', '--lab', dir])).exitCode, 0);
  const res = await fetch(`${server.url}/ks/demo-worker-1`, { headers: { 'X-RHN-Provisioning-MAC-0': 'eth0 52:54:00:AA:BB:CC' } });
  assert.equal(res.status, 200);
  const ks = await res.text();
  const port = new URL(server.url).port;
  assert.match(ks, /^# lab kickstart for demo-worker-1 \(env demo, role worker, image mini\)/);
  assert.match(ks, /^network --bootproto=dhcp --hostname=demo-worker-1$/m);
  assert.ok(ks.includes(`sshkey --username=root "${hostKey}"`), 'the lab key');
  assert.ok(ks.includes(`http://10.0.2.2:${port}/booted?host=demo-worker-1&token=${token('demo-worker-1')}&stage=started&mac=`), "%pre's callback: the host's own token, as guests see the server");
  assert.ok(ks.includes(`http://10.0.2.2:${port}/booted?host=demo-worker-1&token=${token('demo-worker-1')}&stage=\${LAB_STAGE:-installed}&mac=`), "%post's");
  const h = (await hosts()).find((x) => x.name === 'demo-worker-1')!;
  assert.equal(h.state, 'installing');
  // The MAC a request claims is not taken: the lease is the host's MAC.
  assert.equal(h.mac, undefined);
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

test("an install's stages come back as callbacks: %pre started (no boot, no key), %post installed, the first boot up; the next install starts over; an unknown stage is refused, and a start outside an install window", async () => {
  const mac = leaseMac('demo-worker-2');
  const q = (stage?: string) => `host=demo-worker-2&mac=${mac}&token=${token('demo-worker-2')}${stage === undefined ? '' : `&stage=${stage}`}`;
  const me = async () => (await hosts()).find((x) => x.name === 'demo-worker-2')!;
  const before = [db(), bootLog()];
  assert.equal((await callBack(q('finished'))).status, 400);
  assert.deepEqual([db(), bootLog()], before, 'nothing recorded');
  // An install start only inside an install window: else whoever holds the host's token could make a live host "installing".
  const outside = await callBack(q('started'), '');
  assert.equal(outside.status, 409);
  assert.match(((await outside.json()) as { error: string }).error, /^demo-worker-2 reports an install started, but no install window is open for it .*lab kickstart --allow demo-worker-2/);
  assert.notEqual((await me())?.state, 'installing');
  const allow = async () => assert.equal((await lab(['--lab', dir, 'kickstart', '--allow', 'demo-worker-2'])).exitCode, 0);
  await allow();
  assert.equal((await callBack(q('started'), '')).status, 200);
  let h = await me();
  assert.deepEqual([h.state, h.bootCount, h.hostKey, Object.keys(h.stages ?? {})], ['installing', 0, undefined, ['started']]);
  assert.match(bootLog(), / !stage started demo-worker-2 /);
  assert.equal((await callBack(q('installed'), hostKey, { 'content-type': 'text/plain' })).status, 200);
  h = await me();
  assert.deepEqual([h.state, h.bootCount, h.hostKey, Object.keys(h.stages!)], ['up', 1, hostKey.split(' ').slice(0, 2).join(' '), ['started', 'installed']]);
  assert.ok(h.stages!.installed! >= h.stages!.started!);
  // The installed system's boots: the first is "up", later ones leave it.
  assert.equal((await callBack(q('up'), hostKey, { 'content-type': 'text/plain' })).status, 200);
  const up = (await me()).stages!.up;
  assert.ok(up);
  assert.equal((await callBack(q(), hostKey, { 'content-type': 'text/plain' })).status, 200);
  assert.equal((await me()).stages!.up, up);
  // A new install starts over.
  await allow();
  assert.equal((await callBack(q('started'))).status, 200);
  assert.deepEqual(Object.keys((await me()).stages!), ['started']);
});

test('callbacks with a bad or missing token, or malformed fields, change nothing', async () => {
  const mac = leaseMac('demo-lb-1');
  assert.equal((await callBack(`host=demo-lb-1&mac=${mac}&token=${token('demo-lb-1')}`)).status, 200); // something recorded first
  const before = [db(), bootLog()];
  const t = token('demo-lb-1');
  const cases: [string, BodyInit | undefined, number][] = [
    [`host=demo-lb-1&mac=${mac}`, undefined, 403],
    [`host=demo-lb-1&mac=${mac}&token=wrong`, undefined, 403],
    [`host=demo-lb-1&mac=${mac}&token=${t}x`, undefined, 403],
    [`host=demo-lb-1&mac=${mac}&token=${t.slice(0, -1)}`, new URLSearchParams({ hostkey: hostKey }), 403],
    // Another host's token speaks for that host only.
    [`host=demo-lb-1&mac=${mac}&token=${token('demo-worker-2')}`, undefined, 403],
    // The lab-wide secret itself (what every host carried before per-host tokens) is no host's token.
    [`host=demo-lb-1&mac=${mac}&token=${readFileSync(path.join(dir, 'inventory', 'callback-token'), 'utf8').trim()}`, undefined, 403],
    [`host=../etc&mac=${mac}&token=${t}`, undefined, 403],
    [`host=demo-lb-1&mac=52:54:00:00:00&token=${t}`, undefined, 400],
    [`host=demo-lb-1&token=${t}`, undefined, 400],
    [`host=demo-lb-1&mac=${mac}&ip=10.0.2.300&token=${t}`, undefined, 400],
    [`host=demo-lb-1&mac=${mac}&token=${t}`, new URLSearchParams({ hostkey: 'ssh-ed25519 bm90IGEga2V5' }), 400],
    [`host=demo-lb-1&mac=${mac}&token=${t}`, new URLSearchParams({ hostkey: 'ssh-rsa ' + hostKey.split(' ')[1] }), 400],
  ];
  for (const [q, body, status] of cases) {
    const res = await callBack(q, body);
    assert.equal(res.status, status, q);
  }
  // A key sent unencoded in a form body: its '+' arrives as a space and cuts it short.
  const cut = await callBack(`host=demo-lb-1&mac=${mac}&token=${t}`, 'hostkey=ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJA4EU+mKDcuLAd7CRgTvAU4TAthEfsVYUurZP7n1kWN', { 'content-type': 'application/x-www-form-urlencoded' });
  assert.equal(cut.status, 400);
  assert.deepEqual([db(), bootLog()], before, 'nothing recorded');
});

test('the edges of /booted: GET is told to POST, another Host name, a body over 16 kB and broken JSON are refused in one line each, nothing recorded; a JSON body and a Bearer token do', async () => {
  const mac = leaseMac('demo-lb-1');
  const t = token('demo-lb-1');
  assert.equal((await callBack(`host=demo-lb-1&mac=${mac}&token=${t}`)).status, 200);
  const before = [db(), bootLog()];
  const get = await fetch(`${server.url}/booted?host=demo-lb-1&mac=${mac}&token=${t}`);
  assert.equal(get.status, 405);
  assert.equal(get.headers.get('allow'), 'POST');
  assert.deepEqual(await get.json(), { error: 'a boot callback is a POST' });
  // fetch will not send another Host: a raw request does.
  const rebound = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const u = new URL(`${server.url}/booted?host=demo-lb-1&mac=${mac}&token=${t}`);
    const req = http.request({ host: u.hostname, port: u.port, path: `${u.pathname}${u.search}`, method: 'POST', headers: { host: 'evil.example' } }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(rebound.status, 421, rebound.body);
  const big = await callBack(`host=demo-lb-1&mac=${mac}&token=${t}`, 'x'.repeat(17 * 1024), { 'content-type': 'text/plain' });
  assert.equal(big.status, 413);
  const broken = await callBack(`host=demo-lb-1&mac=${mac}&token=${t}`, '{"hostkey": ', { 'content-type': 'application/json' });
  assert.equal(broken.status, 400);
  const error = ((await broken.json()) as { error: string }).error;
  assert.match(error, /^JSON body: /);
  assert.doesNotMatch(error, /\n/);
  assert.equal(big.headers.get('x-content-type-options'), 'nosniff');
  assert.deepEqual([db(), bootLog()], before, 'nothing recorded');
  // Fields and key in a JSON body, the token as a Bearer header.
  const json = await callBack('', JSON.stringify({ host: 'demo-lb-1', mac, hostkey: hostKey }), { 'content-type': 'application/json', authorization: `Bearer ${t}` });
  assert.equal(json.status, 200, await json.clone().text());
  assert.equal(((await json.json()) as { host: string }).host, 'demo-lb-1');
});

test('a good callback records the host, its host key, and one boot log line', async () => {
  const linesBefore = bootLog().split('\n').filter(Boolean).length;
  const mac = leaseMac('demo-worker-1');
  const res = await callBack(`host=demo-worker-1&mac=${mac.toUpperCase().replace(/:/g, '-')}&ip=10.0.2.15&token=${token('demo-worker-1')}`, new URLSearchParams({ hostkey: hostKey }));
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { ok: true, host: 'demo-worker-1', bootCount: 1, declared: true });
  const h = (await hosts()).find((x) => x.name === 'demo-worker-1')!;
  assert.equal(h.state, 'up');
  assert.equal(h.ip, '10.0.2.15');
  assert.equal(h.mac, mac);
  assert.equal(h.hostKey, hostKey.split(' ').slice(0, 2).join(' '));
  assert.equal(h.role, 'worker');
  const lines = bootLog().trim().split('\n');
  assert.equal(lines.length, linesBefore + 1);
  assert.equal(lines.at(-1), `${lines.at(-1)!.split(' ')[0]} demo-worker-1 10.0.2.15 ${mac}`);
  // A reboot calls back again: same host, one more boot.
  const again = await callBack(`host=demo-worker-1&mac=${mac}&ip=10.0.2.15&token=${token('demo-worker-1')}`);
  assert.equal(((await again.json()) as { bootCount: number }).bootCount, 2);
});

test('the host key may come as a plain-text body, as busybox wget sends it', async () => {
  const res = await callBack(`host=demo-worker-2&mac=${leaseMac('demo-worker-2')}&ip=10.0.2.15&token=${token('demo-worker-2')}`, `${hostKey}\n`, { 'content-type': 'text/plain' });
  assert.equal(res.status, 200);
  assert.equal((await hosts()).find((x) => x.name === 'demo-worker-2')!.hostKey, hostKey.split(' ').slice(0, 2).join(' '));
});

test('every host key a host holds is pinned: ed25519 for lab, the others beside it and in known_hosts; outside an install window a changed one is refused and a new type is not pinned; rekey takes the set refused', async () => {
  const name = 'prod-worker-8';
  assert.equal((await lab(['--lab', dir, 'kickstart', name])).exitCode, 0); // its lease made
  const q = `host=${name}&mac=${leaseMac(name)}&ip=10.0.2.15&token=${token(name)}`;
  const text = { 'content-type': 'text/plain' };
  const me = async () => (await hosts()).find((x) => x.name === name)!;
  const pinned = async () => [(await me()).hostKey, (await me()).otherKeys];
  const key = (type: 'ed25519' | 'rsa' | 'ecdsa') => ssh2.utils.generateKeyPairSync(type, type === 'ecdsa' ? { bits: 256 } : type === 'rsa' ? { bits: 2048 } : {}).public.split(' ').slice(0, 2).join(' ');
  const [ed, rsa, ecdsa] = [key('ed25519'), key('rsa'), key('ecdsa')];
  const errorOf = async (r: Response) => ((await r.json()) as { error: string }).error;

  // The .pub files concatenated, RSA first, comments on: ed25519 is still the one lab pins for itself.
  assert.equal((await callBack(q, `${rsa} root@guest\n${ed} root@guest\n`, text)).status, 200);
  assert.deepEqual(await pinned(), [ed, [rsa]]);
  assert.equal((await lab(['--lab', dir, 'ssh-config'])).exitCode, 0);
  const known = readFileSync(path.join(dir, 'inventory', 'known_hosts'), 'utf8').split('\n').filter((l) => l.startsWith(`${name} `));
  assert.deepEqual(known, [`${name} ${ed}`, `${name} ${rsa}`]);

  // Bad bodies change nothing: two keys of one type, a line that is no key.
  const before = [db(), bootLog()];
  for (const body of [`${ed}\n${key('ed25519')}`, `${ed}\nssh-rsa bm90IGEga2V5`]) {
    const r = await callBack(q, body, text);
    assert.equal(r.status, 400, body);
    assert.match(await errorOf(r), /^hostkey: expected SSH public keys, one per line and one of each type/);
  }
  assert.deepEqual([db(), bootLog()], before);

  // Its RSA key changed, its ed25519 did not (a copied token bringing a key of its own): refused, alerted.
  const rsa2 = key('rsa');
  const changed = await callBack(q, `${ed}\n${rsa2}`, text);
  assert.equal(changed.status, 409);
  assert.equal(await errorOf(changed), `host key of ${name} changed: offered ${keyFingerprint(rsa2)}, pinned ${keyFingerprint(rsa)}: refused and not used; if you reinstalled it yourself, accept it with \`lab hosts rekey ${name}\``);
  assert.deepEqual(await pinned(), [ed, [rsa]]);
  assert.deepEqual((await me()).refusedKey?.otherKeys, [rsa2]);
  // Its ed25519 key gone, only RSA left: a change as well.
  assert.equal((await callBack(q, rsa, text)).status, 409);
  // A key of a new type outside an install window: the boot counts, the key is not pinned.
  const boots = (await me()).bootCount;
  assert.equal((await callBack(q, `${ed}\n${rsa}\n${ecdsa}`, text)).status, 200);
  assert.deepEqual([...(await pinned()), (await me()).bootCount], [ed, [rsa], boots + 1]);

  // Reinstalled by hand: rekey pins the whole set it offered.
  const ed2 = key('ed25519');
  assert.equal((await callBack(q, `${ed2}\n${rsa2}`, text)).status, 409);
  assert.equal((await lab(['--lab', dir, 'hosts', 'rekey', name])).exitCode, 0);
  assert.deepEqual(await pinned(), [ed2, [rsa2]]);
  // Inside an install window the set offered is the host's, a type it no longer has dropped.
  assert.equal((await lab(['--lab', dir, 'kickstart', '--allow', name])).exitCode, 0);
  assert.equal((await callBack(q, `${ed}\n${ecdsa}`, text)).status, 200);
  assert.deepEqual(await pinned(), [ed, [ecdsa]]);
  assert.equal((await callBack(q, ed, text)).status, 200, 'a later boot sending ed25519 alone');
  assert.deepEqual(await pinned(), [ed, [ecdsa]]);
});

test('hosts made by hand call back with their own token, up to the --undeclared bound; ip defaults to the caller', async () => {
  const res = await callBack(`host=Handmade&mac=52:54:00:12:34:56`, undefined, { authorization: `Bearer ${token('handmade')}` });
  assert.equal(res.status, 200);
  const h = (await hosts()).find((x) => x.name === 'handmade')!;
  assert.equal(h.env, undefined);
  assert.equal(h.role, undefined);
  assert.equal(h.ip, '127.0.0.1');
  assert.equal((await callBack(`host=second&mac=52:54:00:12:34:57&token=${token('second')}`)).status, 200);
  const third = await callBack(`host=third&mac=52:54:00:12:34:58&token=${token('third')}`);
  assert.equal(third.status, 403);
  assert.match(((await third.json()) as { error: string }).error, /2 undeclared hosts are recorded already \(--undeclared 2\)/);
  // The bound is on hosts, not callbacks: a known one boots again.
  assert.equal((await callBack(`host=handmade&mac=52:54:00:12:34:56&token=${token('handmade')}`)).status, 200);
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
    assert.equal((await fetch(`${server.url}/ks/demo-lb-2`)).status, 404);
    writeFileSync(file, edited);
    // Declared now: known, though not open for install (403 rather than 404).
    await eventually(async () => (await fetch(`${server.url}/ks/demo-lb-2`)).status === 403, 10_000, 'demo-lb-2 to appear');
    writeFileSync(file, good.replace('export default defineLab({', 'export default defineLab({{'));
    await eventually(() => server.output().includes('kept the previous config'), 10_000, 'the broken edit to be reported');
    assert.equal((await fetch(`${server.url}/ks/demo-lb-2`)).status, 403, 'still on the last good config');
  } finally {
    writeFileSync(file, good);
  }
});

test('reads of the inventory during a burst of callbacks lose none of them', async () => {
  // The prod hosts, booting ten times each: 100 callbacks, 100 reads, all at once.
  const prod = ['prod-lb-1', 'prod-lb-2', ...Array.from({ length: 8 }, (_, i) => `prod-worker-${i + 1}`)];
  const boots = async () => (await hosts()).filter((h) => prod.includes(h.name)).reduce((n, h) => n + h.bootCount, 0);
  const before = await boots();
  const calls = prod.flatMap((h) => Array.from({ length: 10 }, () => callBack(`host=${h}&mac=${leaseMac(h)}&ip=10.0.2.15&token=${token(h)}`)));
  const reads = Array.from({ length: 100 }, () => fetch(`${server.url}/api/hosts`).then((r) => r.json()));
  const done = await Promise.all([...calls, ...reads]);
  assert.ok(done.slice(0, 100).every((r) => (r as Response).status === 200));
  assert.equal((await boots()) - before, 100);
});

test('a command that serves callbacks itself, and cannot listen, says so and names lab serve, not options it lacks', async () => {
  // The scaffold is bridged on 10.77.0.1, an address no interface here holds outside the lab's namespace.
  const { dir, cleanup } = await tempLab();
  try {
    const { loadLab } = await import('../../src/config/load.js');
    const { callbackServer } = await import('../../src/server/serve.js');
    await assert.rejects(callbackServer(await loadLab(dir)), (e: Error & { hint?: string }) => {
      assert.match(e.message, /^cannot listen on 10\.77\.0\.1:8077: no interface of this machine has the address 10\.77\.0\.1 \(serving callbacks for this command, as no lab serve runs\)$/);
      assert.equal(e.hint, 'bring up the lab network first, or run `lab serve` with --bind or --port where it can listen');
      return true;
    });
  } finally {
    cleanup();
  }
});
