import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { execa } from 'execa';
import { writeFileSync } from 'node:fs';
import { lab, tempLab, readJson, cli } from './helpers.js';
import { makeLabBridge, serveInNs } from './netns.js';
import type { InventoryData } from '../src/inventory/types.js';
import type { HostStatus } from '../src/env/status.js';
import type { HostResult } from '../src/deploy/run.js';

/**
 * The env manager on real mini guests on a bridge in a test namespace: the
 * scaffold's demo environment (a load balancer, workers min 1, max 2).
 */

interface StartJson {
  ok: boolean;
  hosts: HostStatus[];
  started: { host: string; outcome: string; detail?: string }[];
  services: HostResult[];
}

const hosts = ['demo-lb-1', 'demo-worker-1', 'demo-worker-2'];

test('env start-all brings up lb + workers with their services, a rerun changes nothing, a lost VM is rebuilt alone, start-worker restarts one, stop powers all off, start-min brings back the minimum', { timeout: 900_000 }, async () => {
  const ns = `labte${process.pid % 100000}`;
  const { dir, cleanup } = await tempLab();
  const inNs = (args: string[]) => lab(['--lab', dir, ...args], { netns: ns });
  const start = async (args: string[]) => {
    const r = await inNs([...args, '--json']);
    assert.ok(r.stdout.startsWith('{'), `lab ${args.join(' ')}: ${r.stdout}\n${r.stderr}`);
    return { ...r, json: JSON.parse(r.stdout) as StartJson };
  };
  const db = () => readJson<InventoryData>(path.join(dir, 'inventory', 'db.json'));
  const boots = () => hosts.map((h) => db().hosts[h]?.bootCount ?? 0);
  let server: { stop: () => Promise<void> } | undefined;
  try {
    await makeLabBridge(ns);
    server = await serveInNs(ns, dir);

    // From nothing: the image is built, the hosts cloned and booted, the services deployed, started and tested.
    const first = await start(['env', 'start-all', 'demo']);
    assert.equal(first.exitCode, 0, first.stderr);
    assert.deepEqual(first.json.hosts.filter((h) => h.live).map((h) => h.host), hosts);
    assert.deepEqual(first.json.started.map((s) => s.outcome), ['up', 'up', 'up']);
    const lbTest = first.json.services.find((s) => s.host === 'demo-lb-1')!;
    assert.equal(lbTest.outcome, 'ok', JSON.stringify(lbTest));
    assert.match(lbTest.detail!, /^reached (?=.*demo-worker-1 x\d)(?=.*demo-worker-2 x\d)/);
    assert.match(first.stderr, /\] demo-worker-1: cloning mini\n/);
    assert.deepEqual(hosts.map((h) => db().hosts[h]!.serviceVersion), ['1', '1.0.0', '1.0.0']);
    // Requests through the load balancer reach every live worker.
    const via = await inNs(['hello', 'test', '--via', 'lb', '--json']);
    assert.equal(via.exitCode, 0, via.stdout);
    for (const h of (JSON.parse(via.stdout) as { hosts: HostResult[] }).hosts) assert.match(h.detail!, new RegExp(`^through demo-lb-1 after \\d+ request\\(s\\): hello from ${h.host} version 1\\.0\\.0$`));

    // Again: nothing to do, nothing done.
    const bootsBefore = boots();
    const again = await start(['env', 'start-all', 'demo']);
    assert.equal(again.exitCode, 0, again.stderr);
    assert.deepEqual(again.json.started.map((s) => s.outcome), ['running', 'running', 'running']);
    assert.deepEqual(again.json.services.map((s) => s.detail), ['unchanged', 'unchanged', 'unchanged']);
    assert.doesNotMatch(again.stderr, /deploy|cloning|starting/);
    assert.deepEqual(boots(), bootsBefore);
    // On a terminal (script's pty): a line per host rewritten in place, then the table.
    const tty = await execa('script', ['-qfec', ['ip', 'netns', 'exec', ns, process.execPath, cli, '--lab', dir, 'env', 'start-all', 'demo'].join(' '), '/dev/null'], { reject: false, timeout: 120_000 });
    const table = String(tty.stdout).replace(/\r/g, '');
    assert.match(table, /^demo-worker-1 +worker +running +up +10\.77\.0\.\d+ +yes +hello +1\.0\.0 +\S+ ago +running, service unchanged$/m);
    assert.match(table, /\x1b\[2K\[ *\d+s\] demo-worker-1: /, 'a host\'s line drawn in place');
    assert.match(table, /\x1b\[\d+F/, 'the block redrawn from its first line');

    // A worker's VM is lost: only it is rebuilt and served; the balancer is told.
    assert.equal((await inNs(['image', 'del', 'demo-worker-2', '--force'])).exitCode, 0);
    const mended = await start(['env', 'start-all', 'demo', '--follow']);
    assert.equal(mended.exitCode, 0, mended.stderr);
    assert.deepEqual(mended.json.started.map((s) => s.outcome), ['running', 'running', 'up']);
    // --follow: the console of the host that boots, this boot's lines only; none of the ones left running.
    assert.match(mended.stderr, /^demo-worker-2 console: mini: taking the identity demo-worker-2 \(was mini\)$/m);
    assert.doesNotMatch(mended.stderr, /^demo-(lb|worker)-1 console:/m);
    assert.match(mended.stderr, /demo-worker-2: hello deploy: ok/);
    assert.doesNotMatch(mended.stderr, /demo-worker-1: hello deploy/);
    assert.equal(mended.json.services.find((s) => s.host === 'demo-lb-1')?.outcome, 'ok');

    // start-worker restarts one host; its service comes back (enabled at boot) and the balancer still reaches both.
    // Meanwhile requests keep going through the balancer: none is lost while a worker goes down and comes back.
    const stopFile = path.join(dir, 'stop-requests');
    const lbIp = db().hosts['demo-lb-1']!.ip!;
    const requests = execa('ip', ['netns', 'exec', ns, 'sh', '-c', `while [ ! -f ${stopFile} ]; do curl -s -o /dev/null -w '%{http_code}\\n' --max-time 5 http://${lbIp}/; sleep 0.05; done`], { reject: false });
    const before = db().hosts['demo-worker-1']!.bootCount;
    const restart = await start(['env', 'start-worker', 'demo', 'demo-worker-1']);
    writeFileSync(stopFile, '');
    const codes = String((await requests).stdout).trim().split('\n');
    assert.ok(codes.length > 50, `only ${codes.length} requests`);
    assert.deepEqual([...new Set(codes)], ['200'], `${codes.filter((c) => c !== '200').length} of ${codes.length} requests failed`);
    assert.equal(restart.exitCode, 0, restart.stderr);
    // Drained before it went down: the balancer served from demo-worker-2 alone while demo-worker-1 restarted.
    assert.match(restart.stderr, /demo-worker-1: draining[^]*demo-lb-1: lb reconfigure: ok \(reloaded: demo-worker-2\)[^]*demo-worker-1: stopping[^]*demo-lb-1: lb reconfigure: ok \(reloaded: demo-worker-1 demo-worker-2\)/);
    assert.equal(db().hosts['demo-worker-1']!.bootCount, before + 1);
    const lbAfter = await inNs(['lb', 'test', '--json']);
    assert.equal(lbAfter.exitCode, 0, lbAfter.stdout);
    assert.match((JSON.parse(lbAfter.stdout) as { hosts: HostResult[] }).hosts[0]!.detail!, /^reached (?=.*demo-worker-1 x\d)(?=.*demo-worker-2 x\d)/);

    const list = await inNs(['env', 'list']);
    assert.match(list.stdout, /^demo +lb:1 lb, worker:1-2 hello +3 +3 +3$/m);

    // stop: every VM powered off gracefully, marked down; a deploy then skips them.
    const stop = await inNs(['env', 'stop', 'demo', '--json']);
    assert.equal(stop.exitCode, 0, stop.stderr);
    const stopped = JSON.parse(stop.stdout) as { host: string; outcome: string }[];
    assert.deepEqual(stopped.filter((s) => hosts.includes(s.host)).map((s) => s.outcome), ['graceful', 'graceful', 'graceful']);
    const status = JSON.parse((await inNs(['env', 'status', 'demo', '--json'])).stdout) as HostStatus[];
    assert.deepEqual(status.filter((s) => hosts.includes(s.host)).map((s) => [s.vm, s.state, s.live]), hosts.map(() => ['stopped', 'down', false]));
    const skipped = await inNs(['hello', 'test', '--json']);
    assert.deepEqual((JSON.parse(skipped.stdout) as { hosts: HostResult[] }).hosts.map((h) => h.outcome), ['skipped', 'skipped']);

    // start-min: each group at its minimum; the services come back with the hosts (enabled at boot).
    const min = await start(['env', 'start-min', 'demo']);
    assert.equal(min.exitCode, 0, min.stderr);
    assert.deepEqual(min.json.started.map((s) => [s.host, s.outcome]), [['demo-lb-1', 'up'], ['demo-worker-1', 'up']]);
    assert.deepEqual(min.json.hosts.map((h) => [h.host, h.vm]), [['demo-lb-1', 'running'], ['demo-worker-1', 'running'], ['demo-worker-2', 'stopped']]);
    assert.equal(min.json.services.find((s) => s.host === 'demo-lb-1')?.detail, 'reloaded: demo-worker-1');

    // Unknown names are one-line errors.
    const unknownEnv = await inNs(['env', 'start-all', 'staging']);
    assert.equal(unknownEnv.exitCode, 2);
    assert.match(unknownEnv.stderr, /^lab: no environment "staging" in environments\.ts; environments: demo, prod$/);
    const unknownHost = await inNs(['env', 'start-worker', 'demo', 'demo-worker-9']);
    assert.equal(unknownHost.exitCode, 2);
    assert.match(unknownHost.stderr, /^lab: no host "demo-worker-9" in environment demo; its hosts: demo-lb-1, demo-worker-1, /);
  } finally {
    await server?.stop();
    for (const vm of [...hosts, 'mini']) await inNs(['image', 'del', vm, '--force']);
    await execa('ip', ['netns', 'del', ns], { reject: false });
    cleanup();
  }
});
