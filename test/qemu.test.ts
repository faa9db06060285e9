import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { lab, tempLab, serve, userNetworking, eventually, freePort, sshRun } from './helpers.js';
import { QemuProvider } from '../src/providers/qemu/provider.js';
import { miniGuest } from '../src/images/mini.js';
import { Inventory } from '../src/inventory/store.js';
import { labPaths } from '../src/project/paths.js';
import type { HostRecord } from '../src/inventory/types.js';

test('a mini guest installs from its kickstart by direct kernel boot, boots its disk, answers SSH with the recorded host key, stops gracefully, and is deleted without a trace', { timeout: 600_000 }, async () => {
  const { dir, cleanup } = await tempLab(userNetworking);
  const server = await serve(dir);
  const paths = labPaths(dir);
  const provider = new QemuProvider(path.join(paths.inventory, 'vms'));
  const name = 'demo-worker-1';
  try {
    const guest = await miniGuest();
    const port = new URL(server.url).port;
    // The kickstart fetch allocates the host's lease (its MAC).
    const ks = await lab(['kickstart', name, '--lab', dir]);
    assert.equal(ks.exitCode, 0, ks.stderr);
    const inv = new Inventory(paths);
    const mac = (await inv.read()).leases[name]!.mac;
    const sshPort = await freePort();
    await provider.create({
      name,
      cpus: 1,
      memoryMiB: 256,
      diskMiB: 64,
      mac,
      network: { mode: 'user', sshPort },
      diskBoot: { kernel: guest.kernel, initrd: guest.initrd, append: 'console=ttyS0' },
    });
    assert.equal((await provider.info(name)).state, 'stopped');

    // Install: the installer powers off at the end.
    await provider.start(name, {
      boot: { kind: 'kernel', kernel: guest.kernel, initrd: guest.initrd, append: `console=ttyS0 inst.ks=http://10.0.2.2:${port}/ks/${name}` },
      noReboot: true,
    });
    await eventually(async () => (await provider.info(name)).state === 'stopped', 180_000, 'the install to power off');
    const installed = (await inv.read()).hosts[name] as HostRecord;
    assert.equal(installed?.bootCount, 1, await provider.consoleTail(name, 20));
    assert.equal(installed.mac, mac);
    assert.equal(installed.env, 'demo');
    assert.match(installed.hostKey ?? '', /^ssh-ed25519 [A-Za-z0-9+/]{68}$/);

    // Boot the installed disk: it calls back again.
    await provider.start(name, { boot: { kind: 'disk' } });
    await eventually(async () => ((await inv.read()).hosts[name]?.bootCount ?? 0) >= 2, 180_000, 'the second callback');
    assert.equal((await provider.info(name)).state, 'running');

    const key = readFileSync(paths.sshKey, 'utf8');
    const blob = installed.hostKey!.split(' ')[1]!;
    assert.equal((await sshRun(sshPort, key, blob, 'hostname')).trim(), name);
    // A host key other than the recorded one is refused.
    await assert.rejects(sshRun(sshPort, key, Buffer.from('not the key').toString('base64'), 'true'));

    // The host manager sees it through the forwarded port.
    await inv.update((d) => {
      d.hosts[name]!.reach = { address: '127.0.0.1', port: sshPort };
    });
    const filter = await lab(['hosts', 'filter', '--lab', dir, '--json']);
    assert.equal((JSON.parse(filter.stdout) as { alive: boolean }[])[0]!.alive, true);

    assert.equal(await provider.stop(name, 60_000), 'graceful', await provider.consoleTail(name, 10));
    assert.match(await provider.consoleTail(name, 5), /power button: shutting down/);

    await provider.delete(name);
    assert.equal(existsSync(path.join(paths.inventory, 'vms', name)), false);
    assert.equal((await provider.info(name)).state, 'missing');
    const ps = await execa('pgrep', ['-f', `qemu-system-x86_64 -name ${name}`], { reject: false });
    assert.equal(ps.stdout.trim(), '', 'no QEMU left');
  } finally {
    if ((await provider.info(name)).state !== 'missing') await provider.delete(name);
    await server.stop();
    cleanup();
  }
});
