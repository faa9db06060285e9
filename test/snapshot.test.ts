import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { rmSync } from 'node:fs';
import { execa } from 'execa';
import { lab, tempLab, readJson } from './helpers.js';
import { makeLabBridge, serveInNs } from './netns.js';
import type { InventoryData } from '../src/inventory/types.js';
import type { HostResult } from '../src/deploy/run.js';
import type { HostRestore } from '../src/env/snapshots/restore.js';
import type { SnapshotRow } from '../src/env/snapshots/list.js';

/**
 * Environment snapshots on real mini guests on a bridge in a test namespace:
 * the demo environment (a balancer, workers min 1, max 2) captured whole,
 * changed, and brought back, as its users would check it: through the balancer.
 */

const hosts = ['demo-lb-1', 'demo-worker-1', 'demo-worker-2'];

test('env snapshot and restore: back to 1.0.0 behind the balancer from the snapshot\'s workers only; a snapshot with a host down; a restore into a cleared inventory; --rm', { timeout: 900_000 }, async () => {
  const ns = `labsn${process.pid % 100000}`;
  const { dir, cleanup } = await tempLab();
  const inNs = (args: string[]) => lab(['--lab', dir, ...args], { netns: ns });
  const ok = async (args: string[]) => {
    const r = await inNs(args);
    assert.equal(r.exitCode, 0, `lab ${args.join(' ')}: ${r.stdout}\n${r.stderr}`);
    return r;
  };
  const dbFile = path.join(dir, 'inventory', 'db.json');
  const db = () => readJson<InventoryData>(dbFile);
  const vmState = async (vm: string) => (JSON.parse((await ok(['env', 'status', 'demo', '--json'])).stdout) as { host: string; vm: string }[]).find((r) => r.host === vm)?.vm;
  // What a user sees: ten requests to the balancer, who answered each.
  const answers = async () => {
    const lbIp = db().hosts['demo-lb-1']!.ip!;
    const r = await execa('ip', ['netns', 'exec', ns, 'sh', '-c', `for i in 1 2 3 4 5 6 7 8 9 10; do curl -s --max-time 5 http://${lbIp}/; echo; done`], { reject: false });
    return [...new Set(String(r.stdout).split('\n').filter(Boolean))].sort();
  };
  const restore = async (name: string) => {
    const r = await inNs(['env', 'restore', 'demo', name, '--json']);
    assert.ok(r.stdout.startsWith('{'), `restore ${name}: ${r.stdout}\n${r.stderr}`);
    return { ...r, json: JSON.parse(r.stdout) as { ok: boolean; hosts: HostRestore[]; services: HostResult[] } };
  };
  let server: { stop: () => Promise<void> } | undefined;
  try {
    await makeLabBridge(ns);
    server = await serveInNs(ns, dir);

    // The minimum: the balancer and one worker at 1.0.0; demo-worker-2 has no VM yet.
    await ok(['env', 'start-min', 'demo']);
    assert.deepEqual(await answers(), ['hello from demo-worker-1 version 1.0.0']);
    const keys = Object.fromEntries(hosts.slice(0, 2).map((h) => [h, db().hosts[h]!.hostKey]));
    const taken = await ok(['env', 'snapshot', 'demo', 'v1', '--json']);
    const snap = JSON.parse(taken.stdout) as { hosts: Record<string, { vm: string }>; absent: string[] };
    assert.deepEqual(Object.fromEntries(Object.entries(snap.hosts).map(([h, s]) => [h, s.vm])), { 'demo-lb-1': 'running', 'demo-worker-1': 'running' });
    assert.deepEqual(snap.absent, ['demo-worker-2']);
    // The guests ran on: paused only while captured.
    assert.deepEqual(await answers(), ['hello from demo-worker-1 version 1.0.0']);
    // A second snapshot of that name is refused, naming it; the first is kept.
    const twice = await inNs(['env', 'snapshot', 'demo', 'v1']);
    assert.equal(twice.exitCode, 2, twice.stderr);
    assert.match(twice.stderr, /environment demo has a snapshot "v1" already/);

    // Scaled to two workers, both at 2.0.0.
    await ok(['env', 'start-all', 'demo']);
    await ok(['hello', 'deploy', '--version', '2.0.0']);
    assert.deepEqual(await answers(), ['hello from demo-worker-1 version 2.0.0', 'hello from demo-worker-2 version 2.0.0']);

    // Back: the balancer answers from demo-worker-1 at 1.0.0 alone; demo-worker-2, which the snapshot did not have, is stopped.
    const back = await restore('v1');
    assert.equal(back.exitCode, 0, back.stderr);
    assert.deepEqual(back.json.hosts.map((h) => [h.host, h.outcome]), [['demo-lb-1', 'running'], ['demo-worker-1', 'running'], ['demo-worker-2', 'left-out']]);
    assert.deepEqual(await answers(), ['hello from demo-worker-1 version 1.0.0']);
    assert.equal(await vmState('demo-worker-2'), 'stopped');
    const via = await ok(['hello', 'test', '--via', 'lb', '--json']);
    const viaHosts = (JSON.parse(via.stdout) as { hosts: HostResult[] }).hosts;
    assert.equal(viaHosts.find((h) => h.host === 'demo-worker-1')?.detail?.endsWith('hello from demo-worker-1 version 1.0.0'), true, `${via.stdout}\n${back.stderr}`);
    assert.equal(db().hosts['demo-worker-1']!.serviceVersion, '1.0.0');
    assert.equal(db().hosts['demo-worker-2']!.state, 'down');
    for (const [h, key] of Object.entries(keys)) assert.equal(db().hosts[h]!.hostKey, key, `${h}: its key stays pinned`);
    // The clocks were set to now, not left at the snapshot's moment.
    const clock = Number((await ok(['ssh', 'demo-worker-1', '--', 'date', '+%s'])).stdout.trim());
    assert.ok(Math.abs(clock - Date.now() / 1000) < 30, `demo-worker-1's clock: ${clock}`);

    // A snapshot while a host is down: demo-worker-2's VM is stopped, captured by its disk.
    const down = JSON.parse((await ok(['env', 'snapshot', 'demo', 'one-down', '--json'])).stdout) as { hosts: Record<string, { vm: string }> };
    assert.equal(down.hosts['demo-worker-2']?.vm, 'stopped');
    await ok(['env', 'start-all', 'demo']);
    await ok(['hello', 'deploy', '--version', '2.0.0']);
    assert.deepEqual(await answers(), ['hello from demo-worker-1 version 2.0.0', 'hello from demo-worker-2 version 2.0.0']);

    // The inventory lost (no server writing meanwhile): the restore gives back what it knew, keys and versions.
    await server.stop();
    server = undefined;
    for (const f of ['db.json', 'db.journal']) rmSync(path.join(dir, 'inventory', f), { force: true });
    const cleared = await restore('one-down');
    assert.equal(cleared.exitCode, 0, cleared.stderr);
    assert.deepEqual(cleared.json.hosts.map((h) => [h.host, h.outcome]), [['demo-lb-1', 'running'], ['demo-worker-1', 'running'], ['demo-worker-2', 'stopped']]);
    assert.deepEqual(await answers(), ['hello from demo-worker-1 version 1.0.0']);
    assert.equal(await vmState('demo-worker-2'), 'stopped');
    for (const [h, key] of Object.entries(keys)) assert.equal(db().hosts[h]!.hostKey, key);
    assert.ok(db().hosts['demo-worker-2']!.hostKey, 'the stopped host is known again');
    // The current hosts again: the two that run (the stopped one is known, not current).
    const listed = JSON.parse((await ok(['hosts', 'list', '--json'])).stdout) as { name: string }[];
    assert.deepEqual(listed.map((h) => h.name), ['demo-lb-1', 'demo-worker-1']);
    await ok(['lb', 'test']);

    // The list, then --rm: gone from the list and from every VM's disk.
    const rows = JSON.parse((await ok(['env', 'snapshots', 'demo', '--json'])).stdout) as SnapshotRow[];
    assert.deepEqual(rows.map((r) => [r.name, r.broken]), [['v1', undefined], ['one-down', undefined]]);
    assert.deepEqual(rows[1]!.stopped, ['demo-worker-2']);
    await ok(['env', 'snapshot', '--rm', 'demo', 'v1']);
    assert.deepEqual((JSON.parse((await ok(['env', 'snapshots', 'demo', '--json'])).stdout) as SnapshotRow[]).map((r) => r.name), ['one-down']);
    const tags = await execa('qemu-img', ['info', '-U', path.join(dir, 'inventory', 'vms', 'demo-lb-1', 'disk.qcow2')]);
    assert.doesNotMatch(tags.stdout, /lab-v1/);
    assert.match(tags.stdout, /lab-one-down/);
    const gone = await inNs(['env', 'restore', 'demo', 'v1']);
    assert.equal(gone.exitCode, 2);
    assert.match(gone.stderr, /no snapshot "v1" of environment demo; its snapshots: one-down/);
  } finally {
    await server?.stop();
    for (const vm of [...hosts, 'mini']) await inNs(['image', 'del', vm, '--force']);
    await execa('ip', ['netns', 'del', ns], { reject: false });
    cleanup();
  }
});
