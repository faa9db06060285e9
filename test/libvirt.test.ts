import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { lab, tempLab, readJson, repo, eventually, cli, allCommandLines, callbackToken, publicKeysOf } from './helpers.js';
import { makeLabBridge } from './netns.js';
import { makeHypervisors, onHypervisors, tcpPath, type TestHypervisor } from './hypervisors.js';
import type { InventoryData } from '../src/inventory/types.js';
import type { HostStatus } from '../src/env/status.js';
import type { HypervisorFacts } from '../src/providers/libvirt/facts.js';
import type { Moved } from '../src/env/evacuate.js';

/**
 * Provider libvirt on two real libvirt daemons, each its own network and
 * mount namespace reached over SSH (test/hypervisors.ts): the demo
 * environment spread over both, a hypervisor killed under the monitor, back
 * again, and drained. One lab and its guests for all of it.
 */

interface Line {
  t: number;
  status?: number;
  upstream?: string;
  error?: string;
}

test('provider libvirt: demo spread over two hypervisors; one killed -> its worker replaced on the other, no request fails after the switch; back -> no duplicate; drain -> live migration, requests answered', { timeout: 900_000 }, async () => {
  const ns = `labtv${process.pid % 100000}`;
  let made: Awaited<ReturnType<typeof makeHypervisors>> | undefined;
  let dir = '';
  let cleanupLab = () => undefined as void;
  let requester: ReturnType<typeof execa> | undefined;
  const inNs = (args: string[], timeoutMs = 600_000) => lab(['--lab', dir, ...args], { netns: ns, timeoutMs });
  const status = async () => JSON.parse((await inNs(['env', 'status', 'demo', '--json'])).stdout) as HostStatus[];
  const where = async () => Object.fromEntries((await status()).map((h) => [h.host, h.hypervisor]));
  const domains = async (hv: TestHypervisor) => (await hv.virsh(['list', '--all', '--name'])).split('\n').map((l) => l.trim()).filter(Boolean);
  try {
    await makeLabBridge(ns);
    made = await makeHypervisors(ns, 'labnet', 2);
    const [hv1, hv2] = made.hvs as [TestHypervisor, TestHypervisor];
    ({ dir, cleanup: cleanupLab } = await tempLab(onHypervisors(made.hvs)));

    // Both answer: versions, TCG as declared, capacity; nothing placed yet.
    const listed = JSON.parse((await inNs(['hypervisor', 'list', '--json'])).stdout) as HypervisorFacts[];
    assert.deepEqual(listed.map((f) => [f.name, f.reachable, f.accel, f.vms.length]), [['hv1', true, 'tcg', 0], ['hv2', true, 'tcg', 0]]);
    assert.match(listed[0]!.libvirt ?? '', /^\d+\.\d+/);

    // start-all: the image on one, lb and workers spread over both; every service tested, through the balancer too.
    const start = await inNs(['env', 'start-all', 'demo', '--json']);
    assert.equal(start.exitCode, 0, `${start.stdout}\n${start.stderr}`);
    const placed = await where();
    assert.deepEqual(new Set([placed['demo-worker-1'], placed['demo-worker-2']]), new Set(['hv1', 'hv2']), `spread: a group's hosts on different hypervisors (${JSON.stringify(placed)})`);
    // The one to kill holds a worker and not the balancer; the worker there moves to the other.
    const [gone, stays] = placed['demo-lb-1'] === 'hv1' ? [hv2, hv1] : [hv1, hv2];
    const lost = placed['demo-worker-1'] === gone.name ? 'demo-worker-1' : 'demo-worker-2';
    const db = () => readJson<InventoryData>(path.join(dir, 'inventory', 'db.json'));
    assert.equal(db().hosts[lost]!.hypervisor, gone.name, 'the placement is kept in the inventory');
    const hostsJson = JSON.parse((await inNs(['hosts', 'list', '--json'])).stdout) as { name: string; hypervisor?: string }[];
    assert.equal(hostsJson.find((h) => h.name === 'demo-lb-1')?.hypervisor, stays.name);
    assert.ok((await domains(gone)).includes(`lab-${lost}`), `the domain is on ${gone.name} as libvirt itself lists it`);
    const via = await inNs(['hello', 'test', '--via', 'lb']);
    assert.equal(via.exitCode, 0, via.stdout);
    // SSH with the keys pinned at the callbacks: the deploy ran, and a changed key would be refused (deploy.test.ts).
    for (const h of ['demo-lb-1', 'demo-worker-1', 'demo-worker-2']) assert.match(db().hosts[h]!.hostKey ?? '', /^ssh-ed25519 /, `${h}: its key pinned at its callback`);
    // The hosts' secrets (callback token, SSH host keys) reach them as fw_cfg files in lab's pool: on no command line on the
    // hypervisors (ps shows every user those), and the keys pinned are the ones lab made.
    const seen = allCommandLines();
    assert.match(seen, /qemu-system-x86_64 .*-name guest=lab-demo-worker-1/, 'the guests run here, where ps sees them');
    for (const h of ['demo-lb-1', 'demo-worker-1', 'demo-worker-2']) {
      assert.ok(!seen.includes(callbackToken(dir, h)), `${h}'s callback token on a command line`);
      const w = db().hosts[h]!;
      const made = readJson<{ spec: { hostKeys?: string } }>(path.join(dir, 'inventory', 'vms', h, 'libvirt.json')).spec.hostKeys ?? '';
      assert.deepEqual([w.hostKey, ...(w.otherKeys ?? [])], publicKeysOf(made), `${h}: the host keys lab made`);
    }
    assert.ok(!seen.includes('PRIVATE KEY'), 'a private key on a command line');

    // Requests through the balancer from here on.
    const lbIp = db().hosts['demo-lb-1']!.ip!;
    const stopFile = path.join(dir, 'stop-requests');
    requester = execa('ip', ['netns', 'exec', ns, process.execPath, path.join(repo, 'test', 'fixtures', 'requester.mjs'), `http://${lbIp}/`, stopFile, '200'], { reject: false });
    // Idle workers are not scaled down here (--low 0): the case is a hypervisor going away.
    const monitor = await inNs(['monitor', 'demo', '--daemon', '--interval', '3', '--boot-deadline', '120', '--low', '0']);
    assert.equal(monitor.exitCode, 0, monitor.stderr);
    await eventually(async () => Boolean((JSON.parse((await inNs(['monitor', 'demo', '--status', '--json'])).stdout) as { lastCycle?: string }).lastCycle), 60_000, 'a first monitor cycle');

    // A hypervisor goes away (daemons, guests, link): its worker is lost and made anew on the other.
    const killedAt = Date.now();
    await gone.kill();
    const log = () => readFileSync(path.join(dir, 'inventory', 'monitor-demo.log'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    await eventually(() => log().some((e) => e.event === 'unreachable' && e.host === lost && e.hypervisor === gone.name), 60_000, `the monitor sees ${gone.name} gone`);
    await eventually(async () => (await where())[lost] === stays.name && (await status()).every((h) => h.live), 240_000, `${lost} live again, on ${stays.name}`);
    await eventually(() => log().some((e) => e.event === 'acted' && e.action === 'replace' && e.host === lost), 10_000, 'a replace');
    // The balancer is told: both workers answer through it again.
    await eventually(async () => (await inNs(['hello', 'test', '--via', 'lb'])).exitCode === 0, 60_000, 'hello test --via lb');
    const switched = Date.now();
    await new Promise((r) => setTimeout(r, 8000));

    // Back: the old VM is removed there, never run beside its replacement.
    await gone.up();
    await eventually(() => log().some((e) => e.event === 'reconcile' && String(e.message).includes(`lab-${lost}`)), 90_000, `the monitor removes the old domain on ${gone.name}`);
    assert.ok(!(await domains(gone)).includes(`lab-${lost}`), `no second ${lost} on ${gone.name}`);
    assert.ok((await domains(stays)).includes(`lab-${lost}`));
    assert.equal((await inNs(['monitor', 'demo', '--stop'])).exitCode, 0);

    // Drain the one that stayed (the balancer and both workers): live migration back, requests still answered.
    // The path a migration takes, hypervisor to hypervisor, works (else the fixture, not lab, is broken).
    assert.equal(await tcpPath(stays, gone, `10.77.0.1${gone.name.slice(2)}`), undefined);
    const drainedAt = Date.now();
    const drained = await inNs(['hypervisor', 'drain', stays.name, '--json']);
    assert.equal(drained.exitCode, 0, `${drained.stdout}\n${drained.stderr}`);
    const moved = JSON.parse(drained.stdout) as Moved[];
    const hosts = ['demo-lb-1', 'demo-worker-1', 'demo-worker-2'];
    const notMigrated = moved.some((m) => m.how !== 'migrated') ? `\npath after: ${(await tcpPath(stays, gone, `10.77.0.1${gone.name.slice(2)}`)) ?? 'works'}` : '';
    assert.deepEqual(moved.filter((m) => hosts.includes(m.host)).map((m) => [m.host, m.how, m.to]).sort(), hosts.map((h) => [h, 'migrated', gone.name]), drained.stdout + notMigrated);
    assert.deepEqual(await where(), Object.fromEntries(hosts.map((h) => [h, gone.name])));
    assert.deepEqual((await domains(stays)).filter((d) => d.startsWith('lab-demo')), [], `nothing of demo left on ${stays.name}`);
    // Nor any of their volumes there (disks, consoles, the secrets' files): the images' bases stay, for clones.
    const vols = (await stays.virsh(['vol-list', 'lab'])).split('\n').map((l) => l.trim().split(/\s+/)[0]!);
    assert.deepEqual(vols.filter((v) => v.startsWith('lab-demo')), [], `no volume of demo left on ${stays.name}`);
    assert.ok(vols.some((v) => v.startsWith('lab-mini')), `the image's base volume stays on ${stays.name}: ${vols.join(' ')}`);
    const after = await inNs(['hello', 'test', '--via', 'lb']);
    assert.equal(after.exitCode, 0, `the migrated hosts keep their services and keys: ${after.stdout}\n${after.stderr}`);
    await new Promise((r) => setTimeout(r, 3000));
    writeFileSync(stopFile, '');
    const lines = String((await requester).stdout).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Line);
    requester = undefined;
    const failed = (from: number, to = Infinity) => lines.filter((l) => l.t >= from && l.t < to && l.status !== 200);
    const during = failed(killedAt, switched);
    assert.deepEqual(failed(switched), [], `after the switch (${lines.filter((l) => l.t >= switched).length} requests, drain at +${Math.round((drainedAt - switched) / 1000)} s), none failed`);
    assert.ok(lines.filter((l) => l.t >= drainedAt && l.status === 200).length > 5, 'requests were answered during and after the drain');
    // While the worker was away and before the balancer learnt it, the balancer's next upstream answered for it.
    assert.ok(during.length <= 2, `before the switch: ${JSON.stringify(during)}`);

    // A placement never goes to a drained hypervisor.
    const rooms = JSON.parse((await inNs(['hypervisor', 'list', '--json'])).stdout) as HypervisorFacts[];
    assert.deepEqual(rooms.map((f) => [f.name, f.drained]), [[hv1.name, hv1 === stays], [hv2.name, hv2 === stays]]);
    assert.equal((await inNs(['hypervisor', 'undrain', stays.name])).exitCode, 0);

    // A group pinned to a hypervisor stays there: its host is left with a line saying why, the others move.
    const envFile = path.join(dir, 'environments.ts');
    const config = readFileSync(envFile, 'utf8');
    const pinnedConfig = config.replace("{ role: 'lb', image: 'mini', count: 1,", `{ role: 'lb', image: 'mini', count: 1, hypervisor: '${gone.name}',`);
    assert.notEqual(pinnedConfig, config);
    writeFileSync(envFile, pinnedConfig);
    const pinned = await inNs(['hypervisor', 'drain', gone.name, '--json']);
    assert.equal(pinned.exitCode, 1, `${pinned.stdout}\n${pinned.stderr}`);
    const kept = JSON.parse(pinned.stdout) as Moved[];
    assert.deepEqual(kept.filter((m) => hosts.includes(m.host)).map((m) => [m.host, m.how, m.to ?? '-']).sort(), [['demo-lb-1', 'failed', '-'], ['demo-worker-1', 'migrated', stays.name], ['demo-worker-2', 'migrated', stays.name]], pinned.stdout);
    assert.match(kept.find((m) => m.host === 'demo-lb-1')!.detail!, new RegExp(`^left on ${gone.name}: environments\\.ts pins its group \\(demo, role lb\\) to hypervisor ${gone.name}`));
    assert.ok((await domains(gone)).includes('lab-demo-lb-1'));
    const pinnedVia = await inNs(['hello', 'test', '--via', 'lb']);
    assert.equal(pinnedVia.exitCode, 0, pinnedVia.stdout);
    assert.equal((await inNs(['hypervisor', 'undrain', gone.name])).exitCode, 0);

    // Stopped and started again, each host stays where it is (here: where the drains left them).
    const before = await where();
    assert.equal((await inNs(['env', 'stop', 'demo'])).exitCode, 0);
    const again = await inNs(['env', 'start-all', 'demo']);
    assert.equal(again.exitCode, 0, `${again.stdout}\n${again.stderr}`);
    assert.deepEqual(await where(), before);
    assert.equal((await inNs(['hello', 'test', '--via', 'lb'])).exitCode, 0);
  } finally {
    if (requester) {
      requester.kill();
      await requester;
    }
    if (dir) {
      await inNs(['monitor', 'demo', '--stop']).catch(() => undefined);
      await inNs(['env', 'stop', 'demo', '--deadline', '0']).catch(() => undefined);
    }
    await made?.cleanup();
    await execa('ip', ['netns', 'del', ns], { reject: false });
    cleanupLab();
  }
});

test('provider libvirt: a hypervisor that does not answer is one line naming it, in lab doctor and lab hypervisor list', { timeout: 120_000 }, async () => {
  const ns = `labtw${process.pid % 100000}`;
  const fake: TestHypervisor[] = [{ name: 'hv9', uri: 'qemu+ssh://root@10.77.0.19/system', kill: async () => undefined, up: async () => undefined, virsh: async () => '' }];
  const { dir, cleanup } = await tempLab(onHypervisors(fake));
  try {
    await makeLabBridge(ns);
    const doctor = await lab(['--lab', dir, 'doctor'], { netns: ns });
    assert.notEqual(doctor.exitCode, 0);
    const line = doctor.stdout.split('\n').find((l) => l.includes('hypervisor hv9'));
    assert.match(line ?? '', /hypervisor hv9.*qemu\+ssh:\/\/root@10\.77\.0\.19\/system: .*(No route to host|timed out|Connection refused)/, doctor.stdout);
    const list = JSON.parse((await lab(['--lab', dir, 'hypervisor', 'list', '--json'], { netns: ns })).stdout) as HypervisorFacts[];
    assert.equal(list[0]!.reachable, false);
    assert.match(list[0]!.reason!, /10\.77\.0\.19/);
    // Placing a host there is refused with the same reason, nothing recorded.
    const start = await lab(['--lab', dir, 'image', 'build', 'mini'], { netns: ns });
    assert.notEqual(start.exitCode, 0);
    assert.match(start.stderr.trim().split('\n').pop()!, /^lab: mini: no hypervisor has room .*hv9 does not answer/);
    assert.ok(!existsSync(path.join(dir, 'inventory', 'vms', 'mini', 'libvirt.json')));
  } finally {
    await execa('ip', ['netns', 'del', ns], { reject: false });
    cleanup();
  }
});

test("provider libvirt without hypervisors: this machine's qemu:///system, its bridge the lab network; virsh there lists lab's VMs, as virt-manager would show them", { timeout: 600_000 }, async () => {
  // lab runs on the hypervisor itself (inside the fixture's namespaces, where libvirtd's socket is): br0 holds the gateway.
  const ns = `labty${process.pid % 100000}`;
  let made: Awaited<ReturnType<typeof makeHypervisors>> | undefined;
  let dir = '';
  let cleanupLab = () => undefined as void;
  let run = (_args: string[]) => Promise.resolve({ exitCode: -1, stdout: '', stderr: '' });
  try {
    // The fixture joins each hypervisor to a lab segment: here one holding no address, so nothing but the hypervisor answers on it.
    for (const args of [['netns', 'add', ns], ['-n', ns, 'link', 'add', 'labnet', 'type', 'bridge'], ['-n', ns, 'link', 'set', 'labnet', 'up']]) await execa('ip', args);
    made = await makeHypervisors(ns, 'labnet', 1, { keepRoot: true });
    const host = made.hvs[0]!;
    ({ dir, cleanup: cleanupLab } = await tempLab((s) => s.replace("provider: 'qemu',", "provider: 'libvirt',").replace("name: 'labnet',", "name: 'br0',").replace("gateway: '10.77.0.1',", "gateway: '10.77.0.11',")));
    const prefix = host.enter!();
    run = (args: string[]) => lab(['--lab', dir, ...args], { prefix, timeoutMs: 480_000 });
    const virsh = async (args: string[]) => String((await execa(prefix[0]!, [...prefix.slice(1), 'virsh', '-c', 'qemu:///system', ...args])).stdout);

    const listed = JSON.parse((await run(['hypervisor', 'list', '--json'])).stdout) as HypervisorFacts[];
    assert.deepEqual(listed.map((f) => [f.name, f.uri, f.reachable, f.accel]), [['local', 'qemu:///system', true, 'tcg']]);
    const start = await run(['env', 'start-min', 'demo', '--json']);
    assert.equal(start.exitCode, 0, `${start.stdout}\n${start.stderr}`);
    const st = JSON.parse((await run(['env', 'status', 'demo', '--json'])).stdout) as HostStatus[];
    const up = st.filter((h) => h.live).map((h) => [h.host, h.hypervisor]);
    assert.deepEqual(up, [['demo-lb-1', 'local'], ['demo-worker-1', 'local']], JSON.stringify(st));
    // What virt-manager shows: the system libvirt's own list.
    const names = (await virsh(['list', '--name'])).split('\n').map((l) => l.trim()).filter(Boolean);
    assert.deepEqual(names.filter((n) => n.startsWith('lab-demo')).sort(), ['lab-demo-lb-1', 'lab-demo-worker-1']);
    const via = await run(['hello', 'test', '--via', 'lb']);
    assert.equal(via.exitCode, 0, via.stdout + via.stderr);
    // lab console attaches through virsh console (it needs a terminal: script's pty here); Ctrl-] detaches.
    const term = await execa('sh', ['-c', `(sleep 2; printf 'echo tty-$((6*7))\\r'; sleep 3; printf '\\035') | script -qfec "${[...prefix, process.execPath, cli, '--lab', dir, 'console', 'demo-worker-1'].join(' ')}" /dev/null`], { reject: false, timeout: 60_000 });
    assert.match(term.stdout, /attaching with virsh; detach with Ctrl-\][^]*tty-42/, term.stdout + term.stderr);
    // An environment snapshot here is libvirt's own (virsh lists it); a restore brings back the version it caught, behind the balancer.
    const snap = await run(['env', 'snapshot', 'demo', 'before']);
    assert.equal(snap.exitCode, 0, snap.stdout + snap.stderr);
    assert.equal((await virsh(['snapshot-list', 'lab-demo-worker-1', '--name'])).trim(), 'lab-before');
    const two = await run(['hello', 'deploy', '--version', '2.0.0']);
    assert.equal(two.exitCode, 0, two.stdout + two.stderr);
    const back = await run(['env', 'restore', 'demo', 'before']);
    assert.equal(back.exitCode, 0, back.stdout + back.stderr);
    const viaBack = await run(['hello', 'test', '--via', 'lb']);
    assert.match(viaBack.stdout, /hello from demo-worker-1 version 1\.0\.0/, viaBack.stdout + viaBack.stderr);
    const stop = await run(['env', 'stop', 'demo']);
    assert.equal(stop.exitCode, 0, stop.stdout + stop.stderr);
    assert.equal((await virsh(['domstate', 'lab-demo-worker-1'])).trim(), 'shut off');
    // The console's log (virtlogd's, in lab's pool) read back: the boot as it showed, and what was typed.
    const shown = await run(['console', 'demo-worker-1']);
    assert.match(shown.stdout, /booting demo-worker-1[^]*tty-42/, shown.stdout + shown.stderr);
  } finally {
    if (dir) await run(['env', 'stop', 'demo', '--deadline', '0']).catch(() => undefined);
    await made?.cleanup();
    await execa('ip', ['netns', 'del', ns], { reject: false });
    cleanupLab();
  }
});
