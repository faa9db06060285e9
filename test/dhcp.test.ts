import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { eventually } from './helpers.js';
import { miniGuest } from '../src/distros/mini/guest.js';

/**
 * The mini guest on a network whose DHCP server is dnsmasq as libvirt runs it
 * (its ping check on: it pings an address for about 3 s before offering it):
 * three guests booting at once each get a lease. busybox's udhcpc, sending a
 * discover every second, gave up before dnsmasq's late answers (1 of 3 got a
 * lease under vagrant-libvirt here). In a namespace the test makes and removes.
 */
test('three mini guests booting at once on a dnsmasq network (ping check on) all get leases', { timeout: 180_000 }, async () => {
  const ns = `labtd${process.pid % 100000}`;
  const dir = mkdtempSync(path.join(tmpdir(), 'lab-dhcp-'));
  const guests: ResultPromise[] = [];
  let dnsmasq: ResultPromise | undefined;
  const sh = (args: string[]) => execa('ip', args, { timeout: 30_000 });
  try {
    const g = await miniGuest();
    await sh(['netns', 'add', ns]);
    await sh(['-n', ns, 'link', 'set', 'lo', 'up']);
    await sh(['-n', ns, 'link', 'add', 'br0', 'type', 'bridge']);
    await sh(['-n', ns, 'addr', 'add', '10.78.0.1/24', 'dev', 'br0']);
    await sh(['-n', ns, 'link', 'set', 'br0', 'up']);
    const leases = path.join(dir, 'leases');
    // As libvirt starts it for a network with DHCP (no --no-ping), on this bridge only.
    dnsmasq = execa('ip', ['netns', 'exec', ns, 'dnsmasq', '--keep-in-foreground', '--conf-file=/dev/null', '--bind-interfaces', '--interface=br0', '--except-interface=lo', '--port=0', '--dhcp-range=10.78.0.100,10.78.0.199,255.255.255.0', `--dhcp-leasefile=${leases}`, `--pid-file=${path.join(dir, 'pid')}`, '--log-dhcp', '--log-facility=-'], { reject: false, all: true });
    for (const n of [1, 2, 3]) {
      const tap = `ld${n}${process.pid % 1000}`;
      await sh(['-n', ns, 'tuntap', 'add', 'dev', tap, 'mode', 'tap']);
      await sh(['-n', ns, 'link', 'set', tap, 'master', 'br0', 'up']);
      // No ip= on the kernel line: the installer takes a lease, then asks for its kickstart (nothing answers: not needed here).
      guests.push(
        execa('ip', ['netns', 'exec', ns, 'qemu-system-x86_64', '-accel', 'tcg', '-m', '256', '-display', 'none', '-nodefaults', '-serial', `file:${path.join(dir, `console${n}`)}`, '-kernel', g.kernel, '-initrd', g.initrd, '-append', `console=ttyS0 inst.ks=http://10.78.0.1:9/ks`, '-netdev', `tap,id=n0,ifname=${tap},script=no,downscript=no`, '-device', `e1000,netdev=n0,mac=52:54:00:78:00:0${n}`], { reject: false }),
      );
    }
    await eventually(() => existsSync(leases) && readFileSync(leases, 'utf8').trim().split('\n').filter(Boolean).length === 3, 120_000, 'three leases');
    const macs = readFileSync(leases, 'utf8').trim().split('\n').map((l) => l.split(' ')[1]).sort();
    assert.deepEqual(macs, ['52:54:00:78:00:01', '52:54:00:78:00:02', '52:54:00:78:00:03']);
  } finally {
    for (const p of guests) p.kill('SIGKILL');
    await Promise.all(guests);
    dnsmasq?.kill();
    await dnsmasq;
    await execa('ip', ['netns', 'del', ns], { reject: false });
    rmSync(dir, { recursive: true, force: true });
  }
});
