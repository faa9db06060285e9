import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { launchChromium, keepScreenshot } from './browser.js';
import { tempLab, serve, userNetworking, callbackToken } from './helpers.js';
import { Inventory } from '../src/inventory/store.js';
import { labPaths } from '../src/project/paths.js';
import { openWindow } from '../src/inventory/windows.js';

/** The dashboard in headless Chromium (Debian's), driven by playwright-core: it follows the lab live. */
test('the dashboard at / shows environments by group with their monitor\'s figures and decisions, hosts, images installing, alerts and the boot log, live without a reload, at 1280 and 390 px', { timeout: 120_000 }, async () => {
  const { dir, cleanup } = await tempLab(userNetworking);
  const server = await serve(dir);
  const browser = await launchChromium();
  try {
    const hostKey = readFileSync(path.join(dir, 'inventory', 'lab_ed25519.pub'), 'utf8').trim();
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(`${server.url}/`);
    await page.getByText('live', { exact: true }).waitFor();
    assert.equal(await page.locator('#hosts').innerText(), 'no hosts yet');
    assert.equal(await page.locator('#name').innerText(), 'lab');

    // A boot callback appears as a row and a log line, while the page stays open.
    for (const [i, host] of ['demo-lb-1', 'demo-worker-1', 'demo-worker-2'].entries()) {
      const r = await fetch(`${server.url}/booted?host=${host}&mac=52:54:00:aa:bb:0${i}&ip=10.77.0.${i + 2}&token=${callbackToken(dir, host)}`, { method: 'POST', body: new URLSearchParams({ hostkey: hostKey }) });
      assert.equal(r.status, 200);
    }
    const row = page.locator('tr[data-host="demo-worker-1"]');
    await row.waitFor({ timeout: 5000 });
    assert.deepEqual((await row.locator('td').allInnerTexts()).slice(0, 5), ['demo-worker-1', 'demo', 'worker', 'up', '10.77.0.3']);
    await page.waitForFunction(() => (document.getElementById('log')?.textContent ?? '').includes('demo-worker-2'), undefined, { timeout: 5000 });
    assert.equal((await page.locator('#log').innerText()).trim().split('\n').length, 3);

    // What another process changes (a deploy recording a version, a sweep marking a host down) shows too.
    await new Inventory(labPaths(dir)).update((d) => {
      d.hosts['demo-worker-1']!.serviceVersion = '1.0.0';
      d.hosts['demo-worker-2']!.state = 'down';
    });
    await page.waitForFunction(() => document.querySelector('tr[data-host="demo-worker-1"] td:last-child')?.textContent === '1.0.0', undefined, { timeout: 5000 });
    assert.equal(await page.locator('tr[data-host="demo-worker-2"] td.state').innerText(), 'down');
    assert.equal(await page.locator('tr[data-host="demo-worker-2"] td.state').getAttribute('class'), 'state down');
    // The hypervisor column appears once a VM has one (provider libvirt).
    assert.equal(await page.locator('#hvcol').isVisible(), false);
    await new Inventory(labPaths(dir)).update((d) => {
      d.hosts['demo-worker-1']!.hypervisor = 'hv2';
    });
    await page.waitForFunction(() => document.querySelector('tr[data-host="demo-worker-1"] td:last-child')?.textContent === 'hv2', undefined, { timeout: 5000 });
    assert.equal(await page.locator('#hvcol').isVisible(), true);
    assert.equal(await page.locator('tr[data-host="demo-worker-2"] td:last-child').innerText(), '-');

    // An image installing: its build's state and the stage its own callbacks report, counting on while at "started".
    assert.equal(await page.locator('#images').innerText(), 'no images built yet');
    await new Inventory(labPaths(dir)).update((d) => {
      d.images.mini = { name: 'mini', state: 'installing', install: 'kernel', started: new Date().toISOString() };
      // The install window its build opens: only inside one may an install say it started.
      openWindow(d, 'mini', 'image build mini');
    });
    const stage = (s: string) => fetch(`${server.url}/booted?host=mini&mac=52:54:00:aa:bb:09&ip=10.77.0.9&stage=${s}&token=${callbackToken(dir, 'mini')}`, { method: 'POST', body: s === 'started' ? '' : new URLSearchParams({ hostkey: hostKey }) });
    assert.equal((await stage('started')).status, 200);
    const image = page.locator('tr[data-image="mini"] td');
    await page.waitForFunction(() => /^started, \d+ s so far$/.test(document.querySelector('tr[data-image="mini"] td:nth-child(3)')?.textContent ?? ''), undefined, { timeout: 5000 });
    assert.deepEqual((await image.allInnerTexts()).slice(0, 2), ['mini', 'installing']);
    await new Promise((r) => setTimeout(r, 1100));
    assert.equal((await stage('installed')).status, 200);
    await new Inventory(labPaths(dir)).update((d) => {
      Object.assign(d.images.mini!, { state: 'installed', finished: new Date().toISOString() });
    });
    await page.waitForFunction(() => /^installed in [1-9]\d* s$/.test(document.querySelector('tr[data-image="mini"] td:nth-child(3)')?.textContent ?? ''), undefined, { timeout: 5000 });
    assert.deepEqual((await image.allInnerTexts()).slice(0, 2), ['mini', 'installed']);
    // The image VM is not a host: the hosts table has no row for it.
    assert.equal(await page.locator('tr[data-host="mini"]').count(), 0);

    // Environments as groups against their bounds: the hosts recorded so far, the others off.
    const workers = page.locator('[data-group="demo/worker"]');
    await workers.waitFor({ timeout: 5000 });
    assert.equal(await workers.locator('.bounds').innerText(), 'hello 1.0.0 · 1 live of 1..2');
    assert.deepEqual(await page.locator('[data-group="demo/lb"] .slot').allInnerTexts(), ['demo-lb-1']);
    assert.deepEqual(await workers.locator('.slot').allInnerTexts(), ['demo-worker-1 1.0.0 @hv2', 'demo-worker-2 (down)']);
    assert.equal(await page.locator('[data-group="prod/worker"] .slot').count(), 8, 'prod: its max of 8 slots, all off');
    // A host down is an alert.
    assert.match(await page.locator('#alerts').innerText(), /demo-worker-2 host-down: does not answer/);

    // The monitor's own log (lines as lab monitor writes them): load and latency per worker, the group's mean against its marks, each decision.
    const t = (ago: number) => new Date(Date.now() - ago * 1000).toISOString();
    const decision = (ago: number, action: string, reason: string, load: number, host?: string) =>
      JSON.stringify({ time: t(ago), env: 'demo', event: 'decision', group: 'demo/worker', action, host, reason, inputs: { live: 1, healthy: 1, booting: 0, capacity: 1, min: 1, max: 2, meanLoad: load, missingFigures: 0 }, hosts: [{ name: 'demo-worker-1', state: 'live', load, healthy: true, latencyMs: 40 + load * 10 }] });
    const lines = [
      JSON.stringify({ time: t(600), env: 'demo', event: 'start', intervalMs: 3000, policy: { high: 0.7, low: 0.2, sustain: 3, cooldownMs: 60000, unhealthyAfter: 3, backoffMs: 60000 } }),
      decision(300, 'hold', 'load 0.1 within 0.2..0.7 (or not for 3 intervals yet)', 0.1),
      decision(200, 'hold', 'load 0.9 within 0.2..0.7 (or not for 3 intervals yet)', 0.9),
      decision(100, 'scale-up', 'load 0.95 above 0.7 for 3 intervals', 0.95, 'demo-worker-2'),
      decision(3, 'hold', 'load 0.5 within 0.2..0.7 (or not for 3 intervals yet)', 0.5),
      '{"time": "torn line',
    ];
    writeFileSync(labPaths(dir).monitorLog('demo'), `${lines.join('\n')}\n`);
    await page.locator('[data-chart="demo/worker"] polyline').waitFor({ timeout: 5000 });
    assert.equal(await page.locator('[data-chart="demo/worker"] line.mark').count(), 2, 'the high and low marks');
    assert.equal(await workers.locator('.caption').innerText(), 'mean load per cycle, last hour (dashed: high 0.7, low 0.2)');
    assert.equal((await page.locator('[data-chart="demo/worker"] polyline').getAttribute('points'))!.split(' ').length, 4, 'one point per cycle');
    assert.match(await workers.locator('[data-spark="demo-worker-1"]').innerText(), /demo-worker-1 load 0\.5 · 45 ms/);
    assert.equal(await workers.locator('[data-spark="demo-worker-1"] polyline').count(), 2, 'load and latency');
    assert.match(await workers.locator('.decided').innerText(), /^monitor \d+s ago: hold \(load 0\.5 within 0\.2\.\.0\.7/);
    assert.deepEqual((await workers.locator('[data-timeline] li').allInnerTexts()).map((l) => l.slice(9)), ['scale-up demo-worker-2: load 0.95 above 0.7 for 3 intervals']);

    // An image installing, from its %pre callback: counting on.
    await new Inventory(labPaths(dir)).update((d) => {
      d.images.mini = { name: 'mini', state: 'installing', install: 'kernel', started: new Date().toISOString() };
      // The install window its build opens: only inside one may an install say it started.
      openWindow(d, 'mini', 'image build mini');
    });
    assert.equal((await stage('started')).status, 200);
    await page.waitForFunction(() => /^started, \d+ s so far$/.test(document.querySelector('tr[data-image="mini"] td:nth-child(3)')?.textContent ?? ''), undefined, { timeout: 5000 });
    // Its installer's console as it runs (the QEMU provider's console file of the VM), control characters taken out.
    mkdirSync(path.join(dir, 'inventory', 'vms', 'mini'), { recursive: true });
    writeFileSync(path.join(dir, 'inventory', 'vms', 'mini', 'console.log'), 'mini: fetching kickstart\r\n\x1b[2Jmini: installing mini\x07\r\n<b>not markup</b>\r\n');
    await page.locator('[data-console="mini"]').waitFor({ timeout: 8000 });
    assert.equal(await page.locator('[data-console="mini"]').innerText(), 'mini: fetching kickstart\nmini: installing mini\n<b>not markup</b>');

    await keepScreenshot(page, 'dashboard.png');
    // A phone's width: nothing wider than the screen but the tables, which scroll in their own box; the groups one above the other.
    const phone = await browser.newPage({ viewport: { width: 390, height: 844 }, colorScheme: 'dark' });
    await phone.goto(`${server.url}/`);
    await phone.locator('[data-chart="demo/worker"] polyline').waitFor({ timeout: 5000 });
    assert.equal(await phone.evaluate(() => document.documentElement.scrollWidth), 390, 'no sideways scrolling of the page');
    const [lbBox, prodBox] = [await phone.locator('[data-env="demo"]').boundingBox(), await phone.locator('[data-env="prod"]').boundingBox()];
    assert.ok(lbBox && prodBox && prodBox.y >= lbBox.y + lbBox.height && lbBox.width <= 390, 'environments stacked');
    assert.ok(await phone.locator('tr[data-image="mini"]').isVisible());
    assert.notEqual(await phone.evaluate(() => getComputedStyle(document.body).backgroundColor), 'rgb(247, 248, 250)', 'dark mode');
    await keepScreenshot(phone, 'dashboard-390.png');

    // Failed: the console tail its build kept, no longer the live one.
    const kept = path.join(dir, 'inventory', 'logs', 'mini.console.log');
    mkdirSync(path.dirname(kept), { recursive: true });
    writeFileSync(kept, 'mini: installing mini\nmini: %pre failed\n');
    await new Inventory(labPaths(dir)).update((d) => {
      Object.assign(d.images.mini!, { state: 'failed', reason: 'the installer stopped before calling back', consoleLog: kept, finished: new Date().toISOString() });
    });
    await page.waitForFunction(() => (document.querySelector('[data-console="mini"]')?.textContent ?? '').endsWith('%pre failed'), undefined, { timeout: 5000 });
    assert.deepEqual((await page.locator('tr[data-image="mini"] td').allInnerTexts()).filter((_, i) => [1, 4].includes(i)), ['failed', 'the installer stopped before calling back']);
  } finally {
    await browser.close();
    await server.stop();
    cleanup();
  }
});
