import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { tempLab, serve, userNetworking, callbackToken } from './helpers.js';
import { Inventory } from '../src/inventory/store.js';
import { labPaths } from '../src/project/paths.js';

/** The dashboard in headless Chromium (Debian's), driven by playwright-core: it follows the lab live. */
test('the dashboard at / shows hosts and the boot log, and follows callbacks and inventory changes without a reload', { timeout: 120_000 }, async () => {
  const { dir, cleanup } = await tempLab(userNetworking);
  const server = await serve(dir);
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
  try {
    const hostKey = readFileSync(path.join(dir, 'inventory', 'lab_ed25519.pub'), 'utf8').trim();
    const page = await browser.newPage({ viewport: { width: 1100, height: 700 } });
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

    const shot = path.join(dir, 'dashboard.png');
    await page.screenshot({ path: shot, fullPage: true });
    assert.deepEqual([...readFileSync(shot).subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    assert.ok(statSync(shot).size > 10_000, 'a real picture, not an empty page');
    // Kept for people to look at after the run.
    const keep = path.join(process.env.LAB_TEST_ARTIFACTS ?? path.join(tmpdir(), 'lab-test-artifacts'), 'dashboard.png');
    mkdirSync(path.dirname(keep), { recursive: true });
    copyFileSync(shot, keep);
  } finally {
    await browser.close();
    await server.stop();
    cleanup();
  }
});
