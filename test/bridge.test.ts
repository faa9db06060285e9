import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { lab, tempLab, eventually, readJson } from './helpers.js';
import { makeLabBridge, serveInNs } from './netns.js';
import type { InventoryData } from '../src/inventory/types.js';

/**
 * A bridged lab inside a network namespace the test makes: the bridge holds
 * the gateway address, lab serve listens on it, VMs get taps on the bridge
 * and real addresses.
 */
test('on a bridge in a test namespace a mini guest gets its leased address, answers ping, and SSH finds the host key recorded at its callback', { timeout: 600_000 }, async () => {
  const ns = `labtb${process.pid % 100000}`;
  const { dir, cleanup } = await tempLab();
  const inNs = (args: string[]) => lab(args, { netns: ns });
  let server: { stop: () => Promise<void> } | undefined;
  const db = () => readJson<InventoryData>(path.join(dir, 'inventory', 'db.json'));
  try {
    await makeLabBridge(ns);
    const build = await inNs(['--lab', dir, 'image', 'build', 'mini']);
    assert.equal(build.exitCode, 0, build.stderr);
    const ip = db().leases.mini!.ip!;
    assert.match(ip, /^10\.77\.0\.\d+$/);

    server = await serveInNs(ns, dir);
    const start = await inNs(['--lab', dir, 'image', 'start', 'mini']);
    assert.equal(start.exitCode, 0, start.stderr);
    await eventually(() => (db().imageVms.mini?.bootCount ?? 0) >= 2, 120_000, 'the boot callback');
    const host = db().imageVms.mini!;
    assert.equal(host.ip, ip, 'the guest reports its leased address');

    const ping = await execa('ip', ['netns', 'exec', ns, 'ping', '-c', '2', '-W', '2', ip], { reject: false });
    assert.equal(ping.exitCode, 0, String(ping.stdout));
    // An image VM is not a host: the host manager does not list or probe it; lab image list shows its address.
    const filter = await inNs(['--lab', dir, 'hosts', 'filter', '--json']);
    assert.deepEqual(JSON.parse(filter.stdout), []);
    const images = JSON.parse((await inNs(['--lab', dir, 'image', 'list', '--json'])).stdout) as { name: string; address?: string; vm: string }[];
    assert.deepEqual(images.filter((i) => i.name === 'mini').map((i) => [i.address, i.vm]), [[ip, 'running']]);

    // OpenSSH with only the recorded host key known: strict checking passes...
    const known = path.join(dir, 'known_hosts');
    writeFileSync(known, `${ip} ${host.hostKey}\n`);
    const ssh = (knownFile: string) =>
      execa('ip', ['netns', 'exec', ns, 'ssh', '-i', path.join(dir, 'inventory', 'lab_ed25519'), '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${knownFile}`, '-o', 'ConnectTimeout=10', `root@${ip}`, 'hostname'], { reject: false });
    const ok = await ssh(known);
    assert.equal(ok.exitCode, 0, String(ok.stderr));
    assert.equal(String(ok.stdout).trim(), 'mini');
    // ...and a different key for that address is refused.
    const other = readFileSync(path.join(dir, 'inventory', 'lab_ed25519.pub'), 'utf8').split(' ').slice(0, 2).join(' ');
    writeFileSync(known, `${ip} ${other}\n`);
    const bad = await ssh(known);
    assert.notEqual(bad.exitCode, 0);
    assert.match(String(bad.stderr), /HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);

    const stop = await inNs(['--lab', dir, 'image', 'stop', 'mini']);
    assert.match(stop.stdout, /mini: powered off/);
  } finally {
    await inNs(['--lab', dir, 'image', 'del', 'mini', '--force']);
    await server?.stop();
    await execa('ip', ['netns', 'del', ns], { reject: false });
    cleanup();
  }
});
