import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

/**
 * Debian's headless Chromium, driven by playwright-core; inside a test's
 * network namespace when the server listens there (playwright talks to it
 * over a pipe, which `ip netns exec` passes on).
 */
export async function launchChromium(netns?: string): Promise<Browser> {
  if (!netns) return chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
  const dir = mkdtempSync(path.join(tmpdir(), 'lab-chromium-'));
  const wrapper = path.join(dir, 'chromium');
  writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${netns} /usr/bin/chromium "$@"\n`);
  chmodSync(wrapper, 0o755);
  const browser = await chromium.launch({ executablePath: wrapper, args: ['--no-sandbox'] });
  browser.on('disconnected', () => rmSync(dir, { recursive: true, force: true }));
  return browser;
}

/**
 * A full-page screenshot, checked to be a real picture, and kept in
 * $LAB_TEST_ARTIFACTS (default /tmp/lab-test-artifacts/) for people to look at after the run.
 */
export async function keepScreenshot(page: Page, name: string): Promise<string> {
  const kept = path.join(process.env.LAB_TEST_ARTIFACTS ?? path.join(tmpdir(), 'lab-test-artifacts'), name);
  mkdirSync(path.dirname(kept), { recursive: true });
  const shot = `${kept}.part`;
  await page.screenshot({ path: shot, type: 'png', fullPage: true });
  assert.deepEqual([...readFileSync(shot).subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  assert.ok(statSync(shot).size > 10_000, 'a real picture, not an empty page');
  copyFileSync(shot, kept);
  rmSync(shot);
  return kept;
}
