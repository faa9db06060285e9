import { test } from 'node:test';
import { monitorOf } from '../src/server/overview.js';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { lab, tempLab, readJson, eventually } from './helpers.js';
import { makeLabBridge, serveInNs } from './netns.js';
import type { InventoryData } from '../src/inventory/types.js';

/**
 * The monitor daemon on real mini guests on a bridge in a test namespace: the
 * demo environment with a worker group of min 1, max 2, short intervals.
 */

interface Entry {
  event: string;
  action?: string;
  host?: string;
  reason?: string;
  group?: string;
  message?: string;
}

test('monitor: idle workers scale down to min, a busy one makes it scale up, a killed VM is replaced, a broken edit leaves it on the old config, --stop ends it', { timeout: 900_000 }, async () => {
  const ns = `labtm${process.pid % 100000}`;
  // The scaffold's demo: one lb, workers min 1, max 2.
  const { dir, cleanup } = await tempLab();
  const inNs = (args: string[]) => lab(['--lab', dir, ...args], { netns: ns });
  const logFile = path.join(dir, 'inventory', 'monitor-demo.log');
  const entries = (): Entry[] => (existsSync(logFile) ? readFileSync(logFile, 'utf8').trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Entry) : []);
  const acted = (action: string, host: string) => entries().some((e) => e.event === 'acted' && e.action === action && e.host === host);
  const db = () => readJson<InventoryData>(path.join(dir, 'inventory', 'db.json'));
  const vm = (name: string) => `qemu-system-x86_64 -name ${name} .*${path.join(dir, 'inventory', 'vms', name)}/`;
  const config = path.join(dir, 'environments.ts');
  const good = readFileSync(config, 'utf8');
  let server: { stop: () => Promise<void> } | undefined;
  try {
    await makeLabBridge(ns);
    server = await serveInNs(ns, dir);
    const start = await inNs(['env', 'start-all', 'demo']);
    assert.equal(start.exitCode, 0, start.stdout + start.stderr);

    const daemon = await inNs(['monitor', 'demo', '--daemon', '--interval', '3', '--sustain', '2', '--cooldown', '5', '--high', '0.6', '--low', '0.35']);
    assert.equal(daemon.exitCode, 0, daemon.stderr);
    assert.match(daemon.stdout, /^monitor of demo: running \(pid \d+\)/);
    const again = await inNs(['monitor', 'demo', '--daemon']);
    assert.equal(again.exitCode, 2);
    assert.match(again.stderr, /^lab: the monitor of demo runs already \(pid \d+\); lab monitor demo --stop$/);

    // Idle: the second worker goes (the highest slot), never the first; the balancer is told at once.
    await eventually(() => acted('scale-down', 'demo-worker-2'), 180_000, 'an idle scale-down');
    const down = entries().find((e) => e.event === 'decision' && e.action === 'scale-down')!;
    assert.match(down.reason!, /^load [\d.]+ below 0\.35 for \d+ intervals$/);
    await eventually(async () => (await execa('pgrep', ['-f', vm('demo-worker-2')], { reject: false })).stdout === '', 60_000, 'demo-worker-2 to power off');
    await eventually(() => entries().some((e) => e.event === 'progress' && /lb reconfigure: ok \(reloaded: demo-worker-1\)/.test(e.message ?? '')), 30_000, 'the balancer to drop demo-worker-2');
    // Drained first: the balancer is told before the worker is stopped, not after.
    const order = entries().map((e) => (e.event === 'acted' && e.host === 'demo-worker-2' ? 'stopped' : /lb reconfigure: ok \(reloaded: demo-worker-1\)/.test(e.message ?? '') ? 'told' : '')).filter(Boolean);
    assert.deepEqual(order.slice(0, 2), ['told', 'stopped']);
    assert.ok(!entries().some((e) => e.action === 'scale-down' && e.host === 'demo-worker-1'), 'never below min');

    // Busy: a loop on the one worker raises its load average; the group grows back to two.
    const busy = await inNs(['ssh', 'demo-worker-1', '--', 'setsid sh -c "while :; do :; done" </dev/null >/dev/null 2>&1 & echo busy']);
    assert.equal(busy.stdout.trim(), 'busy', busy.stderr);
    await eventually(() => acted('scale-up', 'demo-worker-2'), 240_000, 'a scale-up under load');
    const up = entries().find((e) => e.event === 'decision' && e.action === 'scale-up')!;
    assert.match(up.reason!, /^load [\d.]+ above 0\.6 for \d+ intervals$/);
    // What the dashboard makes of this real log: both decisions on the timeline, the load that led to them, the policy's marks.
    const seen = monitorOf('demo', readFileSync(logFile, 'utf8'));
    assert.deepEqual(seen.decisions.filter((d) => d.action.startsWith('scale-')).map((d) => [d.action, d.host]), [['scale-down', 'demo-worker-2'], ['scale-up', 'demo-worker-2']]);
    assert.deepEqual([seen.high, seen.low], [0.6, 0.35]);
    assert.ok(Math.max(...seen.means['demo/worker']!.map((p) => p.v)) > 0.6, 'the mean load it scaled up on');
    assert.ok(seen.hosts['demo-worker-1']!.some((x) => x.load !== undefined && x.latencyMs !== undefined), 'per-worker load and health latency');
    await eventually(() => (db().monitors?.demo?.live ?? []).includes('demo-worker-2'), 120_000, 'demo-worker-2 to be live again');
    await inNs(['ssh', 'demo-worker-1', '--', 'for p in $(ps | awk \'/while :; do :; done/ && !/awk/ {print $1}\'); do kill $p; done']);

    // A killed VM is replaced.
    const boots = db().hosts['demo-worker-2']!.bootCount;
    await execa('pkill', ['-KILL', '-f', vm('demo-worker-2')]);
    await eventually(() => acted('replace', 'demo-worker-2'), 60_000, 'the killed worker to be replaced');
    await eventually(() => db().hosts['demo-worker-2']!.bootCount > boots, 120_000, 'the replacement to call back');
    const replace = entries().find((e) => e.event === 'decision' && e.action === 'replace')!;
    assert.equal(replace.reason, 'its VM is not running');

    // A broken edit of environments.ts is reported; the monitor keeps running on the last good config.
    writeFileSync(config, `${good}\nexport const broken = ;\n`);
    await eventually(() => entries().some((e) => e.event === 'config-error'), 30_000, 'the config error to be logged');
    const cycles = entries().filter((e) => e.event === 'decision').length;
    await eventually(() => entries().filter((e) => e.event === 'decision').length > cycles + 2, 30_000, 'more cycles on the old config');
    const status = JSON.parse((await inNs(['monitor', 'demo', '--status', '--json'])).stdout) as { running: boolean; members: string[] };
    assert.equal(status.running, true);
    // (Idle again, demo-worker-2 may have been scaled down once more by now.)
    assert.deepEqual(status.members.slice(0, 2), ['demo-lb-1', 'demo-worker-1']);
    // --stop works even while environments.ts is broken; the log ends cleanly.
    const stop = await inNs(['monitor', 'demo', '--stop']);
    assert.equal(stop.exitCode, 0, stop.stderr);
    assert.match(stop.stdout, /^monitor of demo: stopped \(pid \d+\)$/);
    assert.equal(entries().at(-1)!.event, 'stop');
    assert.equal(existsSync(path.join(dir, 'inventory', 'monitor-demo.pid')), false);
    // Nothing but JSON lines: no warning or stack in the log.
    assert.deepEqual(readFileSync(logFile, 'utf8').trim().split('\n').filter((l) => !l.startsWith('{')), []);
    writeFileSync(config, good);

    // --dry-run decides and logs without acting; a restart keeps the members it had.
    const members = db().monitors!.demo!.members;
    const dry = await inNs(['monitor', 'demo', '--daemon', '--dry-run', '--interval', '2']);
    assert.equal(dry.exitCode, 0, dry.stderr);
    const before = entries().length;
    await eventually(() => entries().slice(before).some((e) => e.event === 'decision'), 60_000, 'a dry-run cycle');
    assert.equal((await inNs(['monitor', 'demo', '--stop'])).exitCode, 0);
    assert.ok(!entries().slice(before).some((e) => e.event === 'acted' || e.event === 'adopt'));
    assert.deepEqual(db().monitors?.demo?.members, members);
  } finally {
    writeFileSync(config, good);
    await inNs(['monitor', 'demo', '--stop']);
    await server?.stop();
    for (const name of ['demo-lb-1', 'demo-worker-1', 'demo-worker-2', 'mini']) await inNs(['image', 'del', name, '--force']);
    await execa('ip', ['netns', 'del', ns], { reject: false });
    cleanup();
  }
});
