import { test } from 'node:test';
import { monitorOf } from '../src/server/overview.js';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { lab, tempLab, readJson, eventually, cli, callbackToken } from './helpers.js';
import { launchChromium, keepScreenshot } from './browser.js';
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
  // The scaffold's demo: one lb, workers min 1, max 2; and a second mini image, built while the dashboard looks on.
  // Its install pauses 20 s after %pre (a real mini install takes 2 s from there), so there is an install in progress to see.
  const { dir, cleanup } = await tempLab((s) => s.replace('  images: {\n', "  images: {\n    mini2: { distro: 'mini', kickstart: 'kickstart/slow.cfg', cpus: 1, memory: 256, disk: 64 },\n"));
  const ks = readFileSync(path.join(dir, 'kickstart', 'mini-ks.cfg'), 'utf8');
  writeFileSync(path.join(dir, 'kickstart', 'slow.cfg'), ks.replace(/^%pre\n([^]*?)^%end/m, '%pre\n$1sleep 20\n%end'));
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

    // The dashboard on this running environment, in Chromium inside the namespace where the server listens:
    // the groups with the monitor's real figures and decisions, an image installing, and an alert.
    const build = execa('ip', ['netns', 'exec', ns, process.execPath, cli, '--lab', dir, 'image', 'build', 'mini2'], { reject: false, timeout: 300_000 });
    const url = readJson<{ url: string }>(path.join(dir, 'inventory', 'server.json')).url;
    // demo-worker-1's own token from another MAC and address: refused, kept as an alert.
    const spoof = await execa('ip', ['netns', 'exec', ns, 'curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '-X', 'POST', `${url}/booted?host=demo-worker-1&mac=52:54:00:de:ad:01&ip=10.77.0.99&token=${callbackToken(dir, 'demo-worker-1')}`], { reject: false });
    assert.match(spoof.stdout, /^4\d\d$/, spoof.stderr);
    const browser = await launchChromium(ns);
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
      await page.goto(`${url}/`);
      const workers = page.locator('[data-group="demo/worker"]');
      // The monitor counts demo-worker-2 live once it answers; its service version is recorded when its deploy ends.
      await page
        .waitForFunction(() => [...document.querySelectorAll('[data-group="demo/worker"] .slot')].map((e) => e.textContent).join() === 'demo-worker-1 1.0.0,demo-worker-2 1.0.0', undefined, { timeout: 90_000 })
        .catch(async (e: Error) => assert.fail(`${e.message}: the worker slots show ${JSON.stringify(await workers.locator('.slot').allInnerTexts())}`));
      assert.equal(await workers.locator('.bounds').innerText(), 'hello 1.0.0 · 2 live of 1..2');
      assert.match((await page.locator('[data-group="demo/lb"] .slot').allInnerTexts()).join(), /^demo-lb-1\b[^,]*$/);
      assert.equal(await page.locator('[data-chart="demo/worker"] line.mark').count(), 2, 'the high and low marks');
      assert.equal(await workers.locator('.caption').innerText(), 'mean load per cycle, last hour (dashed: high 0.6, low 0.35)');
      assert.ok((await page.locator('[data-chart="demo/worker"] polyline').getAttribute('points'))!.split(' ').length > 3, 'one point per cycle');
      assert.match(await workers.locator('[data-spark="demo-worker-1"]').innerText(), /^demo-worker-1 load [\d.]+ · \d+ ms$/);
      const timeline = await workers.locator('[data-timeline] li').allInnerTexts();
      assert.match(timeline.join('\n'), /scale-up demo-worker-2: load [\d.]+ above 0\.6 for \d+ intervals[^]*scale-down demo-worker-2: load [\d.]+ below 0\.35/, 'newest first');
      assert.match(await workers.locator('.decided').innerText(), /^monitor \d+s ago: \w+/);
      for (const host of ['demo-lb-1', 'demo-worker-1', 'demo-worker-2']) assert.equal(await page.locator(`tr[data-host="${host}"] td.state`).innerText(), 'up');
      assert.match(await page.locator('#alerts').innerText(), /demo-worker-1 callback-refused: /);
      // mini2 installing: its stage from its own %pre, counting on, and its installer's console as it runs.
      await page.waitForFunction(() => /^started, \d+ s so far$/.test(document.querySelector('tr[data-image="mini2"] td:nth-child(3)')?.textContent ?? ''), undefined, { timeout: 180_000 });
      await page.waitForFunction(() => /mini: installing mini2/.test(document.querySelector('[data-console="mini2"]')?.textContent ?? ''), undefined, { timeout: 60_000 });
      assert.equal(await page.locator('tr[data-image="mini2"] td:nth-child(2)').innerText(), 'installing');
      await keepScreenshot(page, 'dashboard-demo.png');
      const phone = await browser.newPage({ viewport: { width: 390, height: 844 }, colorScheme: 'dark' });
      await phone.goto(`${url}/`);
      await phone.locator('[data-chart="demo/worker"] polyline').waitFor({ timeout: 10_000 });
      assert.equal(await phone.evaluate(() => document.documentElement.scrollWidth), 390, 'no sideways scrolling of the page');
      await keepScreenshot(phone, 'dashboard-demo-390.png');
      // Installed: the stage says how long it took, and the live console is gone.
      const built = await build;
      assert.equal(built.exitCode, 0, `${String(built.stdout)}\n${String(built.stderr)}`);
      await page.waitForFunction(() => /^installed in \d+ s$/.test(document.querySelector('tr[data-image="mini2"] td:nth-child(3)')?.textContent ?? ''), undefined, { timeout: 10_000 });
      assert.equal(await page.locator('[data-console="mini2"]').count(), 0);
    } finally {
      await browser.close();
      build.kill();
    }
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
    for (const name of ['demo-lb-1', 'demo-worker-1', 'demo-worker-2', 'mini', 'mini2']) await inNs(['image', 'del', name, '--force']);
    await execa('ip', ['netns', 'del', ns], { reject: false });
    cleanup();
  }
});
