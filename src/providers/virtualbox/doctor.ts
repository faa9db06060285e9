import { accessSync, constants, existsSync } from 'node:fs';
import path from 'node:path';
import type { Lab } from '../../config/load.js';
import type { Check } from '../../doctor/types.js';
import { firstLine } from '../../util/exec.js';
import { messageOf } from '../../errors.js';
import { parseCidr } from '../../util/ipv4.js';
import { requireSyslinux } from '../syslinux.js';
import { VBoxDriver } from './driver.js';
import { hostOsOf, vboxUserHome } from './provider.js';
import { hostOnlyNetName, networksConf, rangeAllowed, restrictsRanges, usesHostOnlyNets } from './network.js';
import type { VBoxVersion } from './parse.js';

/**
 * What VirtualBox needs here, each checked for what it is: VBoxManage of a
 * version lab knows, its TFTP folder and pxelinux (every install boots
 * through NAT's TFTP), and on a bridged lab the host-only network holding the
 * gateway, inside the ranges VirtualBox allows.
 */
export async function virtualboxDoctor(lab: Lab, _probe: { kernel?: string }): Promise<Check[]> {
  const bin = process.env.LAB_VBOXMANAGE ?? 'VBoxManage';
  const driver = new VBoxDriver();
  let v: VBoxVersion;
  try {
    v = await driver.getVersion();
  } catch (e) {
    return [{ name: 'VBoxManage', status: 'fail', detail: `${bin}: ${firstLine(messageOf(e))}`, fix: 'install VirtualBox (virtualbox.org), or set LAB_VBOXMANAGE to its VBoxManage' }];
  }
  const supported = v.major === 7 || (v.major === 6 && v.minor === 1);
  const checks: Check[] = [
    supported
      ? { name: 'VBoxManage', status: 'ok', detail: `${bin}: VirtualBox ${v.major}.${v.minor}.${v.patch}` }
      : { name: 'VBoxManage', status: 'warn', detail: `VirtualBox ${v.major}.${v.minor}.${v.patch}: lab knows 6.1 and 7.x`, fix: 'install VirtualBox 7' },
    tftpCheck(),
    syslinuxCheck(),
  ];
  if (lab.config.network.mode === 'bridge') checks.push(...(await hostOnlyChecks(lab, driver, v)));
  return checks;
}

function tftpCheck(): Check {
  const home = vboxUserHome();
  const tftp = path.join(home, 'TFTP');
  // lab makes the folder when it is missing: its nearest existing parent must take writes.
  let probe = tftp;
  while (!existsSync(probe)) probe = path.dirname(probe);
  try {
    accessSync(probe, constants.W_OK);
    return { name: 'TFTP folder', status: 'ok', detail: `${tftp}${probe === tftp ? '' : ' (made at the first install)'}: NAT's TFTP serves installers from it` };
  } catch {
    return { name: 'TFTP folder', status: 'fail', detail: `${probe} takes no writes: installers cannot be put in ${tftp}`, fix: `make ${tftp} writable for this user, or set VBOX_USER_HOME to VirtualBox's folder` };
  }
}

function syslinuxCheck(): Check {
  try {
    const s = requireSyslinux();
    return { name: 'pxelinux', status: 'ok', detail: `${s.pxelinux} and ${path.basename(s.ldlinux)}` };
  } catch (e) {
    return { name: 'pxelinux', status: 'fail', detail: `${firstLine(messageOf(e))}: VirtualBox installs PXE-boot pxelinux`, fix: 'apt-get install pxelinux syslinux-common' };
  }
}

async function hostOnlyChecks(lab: Lab, driver: VBoxDriver, v: VBoxVersion): Promise<Check[]> {
  const { cidr, gateway } = lab.config.network;
  const hostOs = hostOsOf();
  const checks: Check[] = [];
  if (restrictsRanges(hostOs, v)) {
    const r = rangeAllowed(cidr);
    checks.push(r.ok ? { name: 'host-only range', status: 'ok', detail: `${cidr} is a range VirtualBox allows for host-only networks` } : { name: 'host-only range', status: 'fail', detail: r.detail, fix: r.fix });
  }
  try {
    if (usesHostOnlyNets(hostOs, v)) {
      const name = hostOnlyNetName(lab.config.name);
      const net = (await driver.listHostOnlyNets()).find((n) => n.name === name);
      checks.push(net ? { name: 'host-only network', status: 'ok', detail: `${name} (${net.lowerIp}/${net.netmask})` } : { name: 'host-only network', status: 'warn', detail: `no host-only network ${name} yet`, fix: 'lab serve makes it (VBoxManage hostonlynet add)' });
    } else {
      const want = parseCidr(cidr).netmask;
      const found = (await driver.listHostOnlyIfs()).find((i) => i.ip === gateway);
      if (!found) checks.push({ name: 'host-only adapter', status: 'warn', detail: `no host-only interface holds the lab gateway ${gateway} yet`, fix: `lab serve makes one (VBoxManage hostonlyif create, then hostonlyif ipconfig vboxnetN --ip ${gateway} --netmask ${want})` });
      else if (found.netmask !== want) checks.push({ name: 'host-only adapter', status: 'fail', detail: `${found.name} holds ${gateway} with netmask ${found.netmask}, not ${want} (${cidr})`, fix: `VBoxManage hostonlyif ipconfig ${found.name} --ip ${gateway} --netmask ${want}` });
      else checks.push({ name: 'host-only adapter', status: 'ok', detail: `${found.name} holds the lab gateway ${gateway}/${parseCidr(cidr).prefix}` });
    }
  } catch (e) {
    checks.push({ name: 'host-only adapter', status: 'fail', detail: `cannot list VirtualBox's host-only networks: ${firstLine(messageOf(e))}`, fix: `see ${networksConf()} and VirtualBox's host network manager` });
  }
  return checks;
}
