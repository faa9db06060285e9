import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { lab, tempLab, readJson, repo, eventually } from './helpers.js';
import { makeLabBridge } from './netns.js';
import { makeHypervisors, onHypervisors, type TestHypervisor } from './hypervisors.js';
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
    const drainedAt = Date.now();
    const drained = await inNs(['hypervisor', 'drain', stays.name, '--json']);
    assert.equal(drained.exitCode, 0, `${drained.stdout}\n${drained.stderr}`);
    const moved = JSON.parse(drained.stdout) as Moved[];
    const hosts = ['demo-lb-1', 'demo-worker-1', 'demo-worker-2'];
    assert.deepEqual(moved.filter((m) => hosts.includes(m.host)).map((m) => [m.host, m.how, m.to]).sort(), hosts.map((h) => [h, 'migrated', gone.name]), drained.stdout);
    assert.deepEqual(await where(), Object.fromEntries(hosts.map((h) => [h, gone.name])));
    assert.deepEqual((await domains(stays)).filter((d) => d.startsWith('lab-demo')), [], `nothing of demo left on ${stays.name}`);
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
