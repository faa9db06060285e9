import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { eventually } from './helpers.js';
import { makeLabBridge } from './netns.js';
import { makeHypervisors } from './hypervisors.js';
import { miniGuest } from '../src/distros/mini/guest.js';
import { domainXml } from '../src/providers/libvirt/domain.js';

/**
 * The mini guest on a libvirt network with DHCP (libvirt's dnsmasq, which
 * pings an address for about 3 s before offering it): three guests booting
 * at once each get a lease. busybox's udhcpc sending a discover every second
 * gave up before dnsmasq's late answers (1 of 3 got a lease here, as under
 * vagrant-libvirt). On a real libvirtd in the test's own namespaces.
 */
test('three mini guests booting at once on a libvirt DHCP network all get their leases', { timeout: 240_000 }, async () => {
  const ns = `labtd${process.pid % 100000}`;
  const dir = mkdtempSync(path.join(tmpdir(), 'lab-dhcp-'));
  // Seen by the hypervisor's QEMU (its /root is its own; /tmp is shared).
  chmodSync(dir, 0o755);
  let made: Awaited<ReturnType<typeof makeHypervisors>> | undefined;
  try {
    const g = await miniGuest();
    await makeLabBridge(ns);
    made = await makeHypervisors(ns, 'labnet', 1);
    const hv = made.hvs[0]!;
    const net = path.join(dir, 'net.xml');
    writeFileSync(net, "<network><name>labdhcp</name><bridge name='virbr9'/><ip address='10.78.0.1' netmask='255.255.255.0'><dhcp><range start='10.78.0.100' end='10.78.0.199'/></dhcp></ip></network>\n");
    await hv.virsh(['net-define', net]);
    await hv.virsh(['net-start', 'labdhcp']);
    const [kernel, initrd] = [path.join(dir, 'vmlinuz'), path.join(dir, 'initrd.img')];
    copyFileSync(g.kernel, kernel);
    copyFileSync(g.initrd, initrd);
    const consoles = [1, 2, 3].map((n) => path.join(dir, `console${n}.log`));
    for (const n of [1, 2, 3]) {
      const disk = path.join(dir, `disk${n}.qcow2`);
      await execa('qemu-img', ['create', '-q', '-f', 'qcow2', disk, '64M']);
      // No ip= on the kernel line: the installer takes a lease, then asks for its kickstart (nothing serves one: not needed here).
      const xml = domainXml({
        name: `dhcp${n}`, uuid: `6b0b7c5e-0000-4000-8000-00000000000${n}`, type: 'qemu', memoryMiB: 256, cpus: 1,
        kernel: { kernel, initrd, cmdline: 'console=ttyS0 inst.ks=http://10.78.0.1:9/ks' }, onReboot: 'destroy',
        disks: [{ path: disk, format: 'qcow2', device: 'disk' }], nic: { bridge: 'virbr9', mac: `52:54:00:78:00:0${n}` }, console: consoles[n - 1]!, lab: 'dhcp-test',
      }).replace("<interface type='bridge'><source bridge='virbr9'/>", "<interface type='network'><source network='labdhcp'/>");
      writeFileSync(path.join(dir, `dom${n}.xml`), xml);
      await hv.virsh(['define', path.join(dir, `dom${n}.xml`)]);
    }
    await Promise.all([1, 2, 3].map((n) => hv.virsh(['start', `dhcp${n}`])));
    const text = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8') : '');
    // A guest either got its lease (it goes on to its kickstart) or says it got none.
    await eventually(() => consoles.every((c) => /fetching kickstart|no DHCP lease/.test(text(c))), 150_000, 'each guest past its DHCP');
    assert.deepEqual(consoles.map((c) => /no DHCP lease/.test(text(c)) ? 'no lease' : 'lease'), ['lease', 'lease', 'lease']);
  } finally {
    await made?.cleanup();
    await execa('ip', ['netns', 'del', ns], { reject: false });
    rmSync(dir, { recursive: true, force: true });
  }
});
