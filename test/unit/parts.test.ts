import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { tempLab } from '../helpers.js';
import { loadLab, type Lab } from '../../src/config/load.js';
import { loadService, type Service } from '../../src/deploy/services.js';
import { selectTargets, clusterHosts } from '../../src/deploy/targets.js';
import { leaseFor } from '../../src/inventory/leases.js';
import { lintKickstart } from '../../src/kickstart/lint.js';
import type { Finding } from '../../src/distros/lint.js';
import { outcomeOf } from '../../src/deploy/run.js';
import { SessionError } from '../../src/deploy/session.js';
import { OperationFailed } from '../../src/deploy/context.js';
import { emptyInventory, type HostRecord } from '../../src/inventory/types.js';

/**
 * The parts the commands are made of, called directly on the scaffold's lab
 * (loaded once): target selection, leases, kickstart lint, what a host's
 * result says about what was thrown.
 */

let lab: Lab;
let hello: Service;
let cleanup: () => void;

before(async () => {
  const t = await tempLab();
  cleanup = t.cleanup;
  lab = await loadLab(t.dir);
  hello = await loadService(lab, 'hello');
});
after(() => cleanup());

const now = new Date().toISOString();
const rec = (name: string, over: Partial<HostRecord> = {}): HostRecord => ({
  name,
  state: 'up',
  firstSeen: now,
  lastSeen: now,
  lastCallback: now,
  bootCount: 1,
  ip: '10.77.0.9',
  hostKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJA4EU+mKDcuLAd7CRgTvAU4TAthEfsVYUurZP7n1kWN',
  ...over,
});

test('targets: the service\'s hosts that called back, live ones run, down ones skipped with the reason, named ones tried whatever their state', () => {
  const records = {
    'demo-worker-1': rec('demo-worker-1', { serviceVersion: '1.0.0' }),
    'demo-worker-2': rec('demo-worker-2', { state: 'down' }),
    'prod-worker-1': rec('prod-worker-1', { hostKey: undefined }),
  };
  const t = selectTargets(lab, hello, 'test', records, {});
  assert.deepEqual(
    t.map((x) => [x.host.name, x.version, x.skip]),
    [
      ['demo-worker-1', '1.0.0', undefined],
      ['demo-worker-2', '1.0.0', 'down at the last sweep (lab hosts filter; or name it with --hosts)'],
      ['prod-worker-1', '1.0.0', 'no host key recorded at its callback'],
    ],
  );
  // A deploy is about the group's version, not the one deployed; --version wins over both.
  assert.equal(selectTargets(lab, hello, 'deploy', records, { env: 'demo' })[0]!.version, '1.0.0');
  assert.equal(selectTargets(lab, hello, 'test', records, { version: '2.0.0' })[0]!.version, '2.0.0');
  const named = selectTargets(lab, hello, 'test', records, { hosts: ['demo-worker-2', 'prod-worker-5'] });
  assert.deepEqual(named.map((x) => [x.host.name, x.skip]), [['demo-worker-2', undefined], ['prod-worker-5', 'no boot callback recorded: not built or not booted yet']]);
  assert.throws(() => selectTargets(lab, hello, 'test', records, { env: 'staging' }), /^UsageError: --env: no environment "staging"; environments: demo, prod$/);
  assert.throws(() => selectTargets(lab, hello, 'test', records, { version: '9' }), /--version: service hello has no version "9"; versions: 1\.0\.0, 1\.1\.0, 2\.0\.0/);
  assert.throws(() => selectTargets(lab, hello, 'test', records, { hosts: ['demo-lb-1'], env: 'prod' }), /--hosts: demo-lb-1 is in environment demo, not prod/);
  // The cluster is the live hosts only, with their versions.
  assert.deepEqual(clusterHosts(lab, records).map((h) => [h.name, h.version]), [['demo-worker-1', '1.0.0'], ['prod-worker-1', '1.0.0']]);
});

test('leases: declared hosts get addresses in declaration order (the gateway skipped) and a MAC of the provider\'s prefix, kept once given', () => {
  const data = emptyInventory();
  const worker = leaseFor(data, lab, 'demo-worker-1');
  assert.equal(data.leases['demo-lb-1']!.ip, '10.77.0.2');
  assert.equal(worker.ip, '10.77.0.3');
  assert.match(worker.mac, /^52:54:00(:[0-9a-f]{2}){3}$/);
  const macs = Object.values(data.leases).map((l) => l.mac);
  assert.equal(new Set(macs).size, macs.length, 'no MAC twice');
  // Asked again (even after the config changes order), the same lease.
  assert.deepEqual(leaseFor(data, lab, 'demo-worker-1'), worker);
  // A host made by hand gets the next free address.
  const last = Object.values(data.leases).map((l) => l.ip!);
  const hand = leaseFor(data, lab, 'handmade');
  assert.ok(!last.includes(hand.ip!));
  // MACs come from a seed of the lab's own, made at its first lease: a second lab of the same name gets others.
  assert.match(data.macSeed!, /^[0-9a-f]{32}$/);
  const other = emptyInventory();
  assert.notEqual(leaseFor(other, lab, 'demo-worker-1').mac, worker.mac);
  // Leases made before there was a seed keep their MACs.
  const old = { ...emptyInventory(), leases: { 'demo-worker-1': { mac: '52:54:00:aa:bb:cc', ip: '10.77.0.3' } } };
  assert.equal(leaseFor(old, lab, 'demo-worker-1').mac, '52:54:00:aa:bb:cc');
});

test('leases of an older network.cidr are refused in one line naming the hosts and the way out; with user networking an old address is not used', () => {
  const data = emptyInventory();
  leaseFor(data, lab, 'demo-worker-1');
  const moved: Lab = { ...lab, config: { ...lab.config, network: { ...lab.config.network, cidr: '10.88.0.0/24', gateway: '10.88.0.1' } } };
  assert.throws(() => leaseFor(data, moved, 'demo-worker-1'), (e: Error & { hint?: string }) => {
    assert.match(e.message, /^leases outside network\.cidr 10\.88\.0\.0\/24: demo-lb-1 \(10\.77\.0\.2\), demo-worker-1 \(10\.77\.0\.3\), /);
    assert.match(e.hint!, /lab image del <vm> --force --release/);
    return true;
  });
  // Released, a host is leased anew in the new network, keeping nothing of the old.
  for (const n of Object.keys(data.leases)) delete data.leases[n];
  assert.equal(leaseFor(data, moved, 'demo-worker-1').ip, '10.88.0.3');
  const user: Lab = { ...lab, config: { ...lab.config, network: { ...lab.config.network, mode: 'user' } } };
  assert.deepEqual(leaseFor(data, user, 'demo-worker-1'), { mac: data.leases['demo-worker-1']!.mac });
});

test('leases: a hypervisor named by address on the lab network is never leased; an old lease of its address is refused naming both', () => {
  const onHvs: Lab = {
    ...lab,
    config: {
      ...lab.config,
      provider: 'libvirt',
      hypervisors: {
        hv1: { uri: 'qemu+ssh://root@10.77.0.3/system', bridge: 'br0', cpus: 4, memory: 2048, pool: 'lab', accel: 'auto' },
        hv2: { uri: 'qemu+ssh://root@hv2.example/system', bridge: 'br0', cpus: 4, memory: 2048, pool: 'lab', accel: 'auto' },
      },
    },
  };
  const data = emptyInventory();
  leaseFor(data, onHvs, 'demo-lb-1');
  assert.deepEqual(['demo-lb-1', 'demo-worker-1'].map((h) => data.leases[h]!.ip), ['10.77.0.2', '10.77.0.4']);
  assert.ok(!Object.values(data.leases).some((l) => l.ip === '10.77.0.3'));
  // Leased before hv1 was declared: that host is refused, the others go on.
  const before = emptyInventory();
  leaseFor(before, lab, 'demo-lb-1');
  assert.equal(before.leases['demo-worker-1']!.ip, '10.77.0.3');
  assert.equal(leaseFor(before, onHvs, 'demo-lb-1').ip, '10.77.0.2');
  assert.throws(() => leaseFor(before, onHvs, 'demo-worker-1'), (e: Error & { hint?: string }) => {
    assert.equal(e.message, 'demo-worker-1: its lease 10.77.0.3 is the address of hypervisor hv1 (environments.ts hypervisors.hv1.uri)');
    assert.match(e.hint!, /lab image del demo-worker-1 --force --release/);
    return true;
  });
});

test('lint: each distro names what its install would stop at; a commented-out callback is no callback', () => {
  const cb = 'http://10.77.0.1:8077/booted?host=demo-worker-1&token=x';
  const mini = ['text', 'lang en_US.UTF-8', 'keyboard us', 'timezone Etc/UTC', 'part / --fstype=ext2', 'sshkey --username=root "k"', 'poweroff', '%post', `wget "${cb}&mac=1"`, '%end'].join('\n');
  const texts = (fs: Finding[]) => fs.map((f) => `${f.severity}: ${f.text}`);
  assert.deepEqual(lintKickstart(mini, 'mini', cb), []);
  assert.deepEqual(texts(lintKickstart(mini.replace('timezone Etc/UTC\n', ''), 'mini', cb)), ['error: missing timezone: the installer stops at the time zone screen']);
  // anaconda needs more: a source, clearpart, a bootloader.
  const centos = texts(lintKickstart(mini, 'centos', cb));
  assert.ok(centos.some((p) => p.startsWith('error: missing an installation source')));
  assert.ok(centos.some((p) => p.startsWith('error: missing bootloader')));
  // As pykickstart has it: auth is deprecated on RHEL 9 (a warning; anaconda ignores it), removed on RHEL 10 (an error).
  const auth = `${mini}\nauth --enableshadow`;
  assert.ok(texts(lintKickstart(auth, 'centos', cb)).includes('warning: "auth" is deprecated on RHEL9: pykickstart warns and anaconda ignores it; use authselect (removed on RHEL 10)'));
  assert.ok(texts(lintKickstart(auth, 'centos', cb, 'RHEL10')).includes('error: "auth" is not a RHEL10 kickstart command: anaconda stops on it'));
  assert.ok(texts(lintKickstart(`${mini}\ninstall`, 'centos', cb)).includes('error: "install" is not a RHEL9 kickstart command: anaconda stops on it'));
  // A root password in plain text is served to whoever fetches the kickstart; a hash or a locked account is not.
  for (const line of ['rootpw --plaintext hunter2', 'rootpw hunter2', 'rootpw --allow-ssh --plaintext hunter2']) {
    assert.ok(texts(lintKickstart(`${mini}\n${line}`, 'mini', cb)).some((p) => p.startsWith('error: rootpw with a plain-text password')), line);
  }
  for (const line of ['rootpw --lock', 'rootpw --iscrypted $6$salt$hash', 'rootpw --lock --iscrypted $6$salt$hash']) assert.deepEqual(lintKickstart(`${mini}\n${line}`, 'mini', cb), [], line);
  // The callback only in a comment calls nobody.
  const commented = mini.replace(`wget "${cb}&mac=1"`, `# wget "${cb}&mac=1"`);
  assert.deepEqual(texts(lintKickstart(commented, 'mini', cb)), ['error: no callback in %post (expected a request to http://10.77.0.1:8077/booted?host=demo-worker-1&...): lab would never learn the install finished']);
});

test('a host\'s result from what was thrown: refused, timeout, unreachable, failed, or the service\'s own code with its place', () => {
  const cases: [unknown, boolean, string][] = [
    [new SessionError('host key mismatch', 'hostkey'), false, 'refused'],
    [new SessionError('refused the lab key', 'auth'), false, 'refused'],
    [new SessionError('no SSH answer', 'timeout'), false, 'unreachable'],
    [new SessionError('closed', 'unreachable'), true, 'failed'],
    [new SessionError('timed out after 2 s: sleep 30', 'command-timeout'), true, 'timeout'],
    [new OperationFailed('exit 1: false'), true, 'failed'],
  ];
  for (const [e, connected, outcome] of cases) assert.equal(outcomeOf(e, connected, hello, 'deploy').outcome, outcome, String(e));
  const bug = new TypeError('x is not a function');
  bug.stack = `TypeError: x is not a function\n    at deploy (${hello.dir}/service.ts:12:3)\n    at run (/lab/dist/deploy/run.js:1:1)`;
  assert.equal(outcomeOf(bug, true, hello, 'deploy').detail, `hello/service.ts deploy threw: x is not a function (at deploy (${hello.dir}/service.ts:12:3))`);
});

test('a console attach types input through, shows the answer until the console is quiet after piped input ends, detaches at Ctrl-] (bytes before it still sent), and says why it ended', async () => {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const path = await import('node:path');
  const net = await import('node:net');
  const { PassThrough } = await import('node:stream');
  const { attachConsole, DETACH } = await import('../../src/providers/attach.js');
  const dir = mkdtempSync(path.join(tmpdir(), 'lab-attach-'));
  const socket = path.join(dir, 'console.sock');
  const got: string[] = [];
  // A guest that answers each line after a while, in upper case.
  const guest = net.createServer((c) => c.on('data', (d) => { got.push(String(d)); setTimeout(() => c.write(String(d).toUpperCase()), 100); }));
  await new Promise<void>((r) => guest.listen(socket, r));
  const io = () => {
    const input = new PassThrough();
    const output = new PassThrough();
    const said: string[] = [];
    let shown = '';
    output.on('data', (d: Buffer) => (shown += String(d)));
    return { input, output, said, shown: () => shown, say: (l: string) => said.push(l) };
  };
  try {
    const piped = io();
    const ended = attachConsole('w1', { socket }, piped, 400);
    piped.input.end('uptime\n');
    assert.equal(await ended, 'input ended');
    assert.equal(piped.shown(), 'UPTIME\n', 'the answer that came after the input ended');
    assert.deepEqual(piped.said, ['w1: attached to its serial console; detach with Ctrl-]']);
    const keys = io();
    const detached = attachConsole('w1', { socket }, keys, 400);
    await new Promise((r) => setTimeout(r, 50));
    keys.input.write(Buffer.from([0x6c, 0x73, 0x0d, DETACH, 0x78]));
    assert.equal(await detached, 'detached');
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(got, ['uptime\n', 'ls\r'], 'what came before Ctrl-] went in, nothing after it');
    await assert.rejects(attachConsole('w2', { socket: path.join(dir, 'none.sock') }, io()), /^EnvironmentError: w2: its console socket does not answer \(ENOENT\): is the VM running\?$/);
  } finally {
    guest.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('progress by host: on a terminal one line per host rewritten in place, console lines above the block; piped, plain lines; more hosts than rows, plain lines', async () => {
  const { hostLines } = await import('../../src/cli/host-lines.js');
  /** What a terminal shows after these writes: enough of ECMA-48 for CPL (n F), EL (2 K), ED (J) and line feeds. */
  const screen = (writes: string[]) => {
    const rows: string[] = [];
    let y = 0;
    for (const part of writes.join('').split(/(\x1b\[\d*[FKJ]|\n)/).filter(Boolean)) {
      const esc = /^\x1b\[(\d*)([FKJ])$/.exec(part);
      if (part === '\n') y++;
      else if (esc?.[2] === 'F') y = Math.max(0, y - Number(esc[1] || 1));
      else if (esc?.[2] === 'K') rows[y] = '';
      else if (esc?.[2] === 'J') rows.length = y;
      else rows[y] = (rows[y] ?? '') + part;
    }
    return rows.slice(0, y).map((r) => r.replace(/^\[\s*\d+s\] /, ''));
  };
  const term = { writes: [] as string[], isTTY: true, columns: 80, rows: 24, write(t: string) { this.writes.push(t); } };
  const lines = hostLines(term);
  lines.say('demo-lb-1', 'booting');
  lines.say('demo-worker-1', 'booting');
  lines.say('demo-lb-1', 'up, service deployed and started');
  assert.deepEqual(screen(term.writes), ['demo-lb-1: up, service deployed and started', 'demo-worker-1: booting']);
  lines.aside('demo-worker-1 console: taking the identity demo-worker-1');
  lines.say('demo-worker-1', `up ${'x'.repeat(100)}`);
  const shown = screen(term.writes);
  assert.deepEqual(shown.slice(0, 2), ['demo-worker-1 console: taking the identity demo-worker-1', 'demo-lb-1: up, service deployed and started']);
  assert.ok(shown[2]!.startsWith('demo-worker-1: up xxx') && shown[2]!.endsWith('…') && shown.length === 3, 'a long line cut to the width: one row each');
  const pipe = { writes: [] as string[], write(t: string) { this.writes.push(t); } };
  const plain = hostLines(pipe);
  plain.say('demo-lb-1', 'booting');
  plain.say('demo-lb-1', 'up');
  assert.deepEqual(pipe.writes.map((w) => w.replace(/^\[\s*\d+s\] /, '')), ['demo-lb-1: booting\n', 'demo-lb-1: up\n']);
  const small = { writes: [] as string[], isTTY: true, columns: 80, rows: 3, write(t: string) { this.writes.push(t); } };
  const many = hostLines(small);
  for (const h of ['a', 'b', 'c']) many.say(h, 'booting');
  assert.ok(small.writes.at(-1)!.endsWith('c: booting\n') && !small.writes.at(-1)!.includes('\x1b'), 'past the rows, plain lines');
});
