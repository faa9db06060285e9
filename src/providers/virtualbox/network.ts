import { existsSync, readFileSync } from 'node:fs';
import { intToIp, ipToInt, parseCidr, type Cidr } from '../../util/ipv4.js';
import { EnvironmentError, ToolError } from '../../errors.js';
import type { Lab } from '../../config/load.js';
import type { VBoxDriver } from './driver.js';
import type { VBoxVersion } from './parse.js';

/**
 * How a VirtualBox VM joins a bridged lab: a host-only network whose host
 * side holds the lab's gateway. On Linux (and before 7.x everywhere) that is
 * a host-only interface, vboxnetN, a real interface of this machine; 7.x on
 * macOS has host-only networks instead. Vagrant's 7.0 driver decides the same
 * way (use_host_only_nets?: darwin and 7 or later).
 */

export interface LabNetwork {
  /** The lab's name: a host-only network lab makes on macOS is named after it. */
  lab: string;
  cidr: string;
  gateway: string;
}

/** The lab network as environments.ts declares it. */
export function labNetwork(lab: Lab): LabNetwork {
  return { lab: lab.config.name, cidr: lab.config.network.cidr, gateway: lab.config.network.gateway };
}

/** The host-only network lab makes for a lab on macOS with 7.x. */
export const hostOnlyNetName = (lab: string) => `lab-${lab}`;

export type Attachment = { kind: 'hostonly'; adapter: string } | { kind: 'hostonlynet'; network: string };

export function usesHostOnlyNets(hostOs: NodeJS.Platform, v: VBoxVersion): boolean {
  return hostOs === 'darwin' && v.major >= 7;
}

/** The file VirtualBox reads the allowed host-only ranges from (6.1.28 and later); LAB_VBOX_NETWORKS_CONF names another (the stand-in's tests). */
export function networksConf(): string {
  return process.env.LAB_VBOX_NETWORKS_CONF ?? '/etc/vbox/networks.conf';
}
const DEFAULT_RANGE = '192.168.56.0/21';

/** Since 6.1.28, on Linux, macOS and Solaris, host-only addresses must lie in 192.168.56.0/21 unless networks.conf lists other ranges. */
export function restrictsRanges(hostOs: NodeJS.Platform, v: VBoxVersion): boolean {
  if (hostOs === 'win32') return false;
  return v.major > 6 || (v.major === 6 && (v.minor > 1 || (v.minor === 1 && v.patch >= 28)));
}

/** The ranges networks.conf allows ("* 10.0.0.0/8 192.168.0.0/16" lines); without the file, VirtualBox's default. */
export function allowedRanges(confText: string | undefined): string[] {
  if (confText === undefined) return [DEFAULT_RANGE];
  return confText
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter((l) => l.startsWith('*'))
    .flatMap((l) => l.slice(1).trim().split(/\s+/))
    .filter((r) => /^\d+\.\d+\.\d+\.\d+\/\d+$/.test(r));
}

const within = (inner: Cidr, outer: Cidr) => inner.prefix >= outer.prefix && inner.network >= outer.network && inner.last <= outer.last;

/** Whether VirtualBox lets a host-only network hold this lab's network; the fix when it does not. */
export function rangeAllowed(cidr: string, confFile = networksConf()): { ok: true } | { ok: false; detail: string; fix: string } {
  const conf = existsSync(confFile) ? readFileSync(confFile, 'utf8') : undefined;
  const ranges = allowedRanges(conf);
  const lab = parseCidr(cidr);
  if (ranges.some((r) => within(lab, parseCidr(r)))) return { ok: true };
  return {
    ok: false,
    detail: `${cidr} is outside the host-only ranges VirtualBox allows (${ranges.join(', ') || 'none'}${conf === undefined ? `: ${confFile} does not exist` : `, from ${confFile}`})`,
    fix: `add the line "* ${cidr}" to ${confFile} (or "* 10.0.0.0/8 192.168.0.0/16") and restart VirtualBox, or choose a network.cidr inside ${DEFAULT_RANGE}`,
  };
}

/**
 * Find, or make, the host-only network holding the lab's gateway; the same
 * one every time (a second call finds what the first made). `made` says
 * what was made, for the person to know.
 */
export async function ensureAttachment(driver: VBoxDriver, net: LabNetwork, hostOs: NodeJS.Platform): Promise<{ attachment: Attachment; made?: string }> {
  const v = await driver.getVersion();
  const cidr = parseCidr(net.cidr);
  if (usesHostOnlyNets(hostOs, v)) {
    // The host's address on a host-only network is its first one (Vagrant's reading of it too).
    const first = intToIp(cidr.first);
    if (net.gateway !== first) {
      throw new EnvironmentError(`network.gateway ${net.gateway}: with VirtualBox ${v.major}.x on macOS the host's address on a host-only network is its first address, ${first}`, `set network.gateway to ${first}`);
    }
    const name = hostOnlyNetName(net.lab);
    const nets = await driver.listHostOnlyNets();
    if (nets.some((n) => n.name === name)) return { attachment: { kind: 'hostonlynet', network: name } };
    const base = intToIp(cidr.network);
    await driver.addHostOnlyNet(name, cidr.netmask, base, base);
    return { attachment: { kind: 'hostonlynet', network: name }, made: `host-only network ${name} (${net.cidr})` };
  }
  const ifs = await driver.listHostOnlyIfs();
  const holding = ifs.find((i) => i.ip === net.gateway && ipToInt(i.netmask || '0.0.0.0') === ipToInt(cidr.netmask));
  if (holding) return { attachment: { kind: 'hostonly', adapter: holding.name } };
  const name = await driver.createHostOnlyIf();
  try {
    await driver.ipconfigHostOnlyIf(name, net.gateway, cidr.netmask);
  } catch (e) {
    await driver.removeHostOnlyIf(name).catch(() => undefined);
    if (e instanceof ToolError && /E_ACCESSDENIED/.test(e.stderr)) {
      const r = rangeAllowed(net.cidr);
      throw new EnvironmentError(`VirtualBox refused the lab gateway ${net.gateway} on a host-only interface: ${r.ok ? 'access denied' : r.detail}`, r.ok ? undefined : r.fix);
    }
    throw e;
  }
  return { attachment: { kind: 'hostonly', adapter: name }, made: `host-only interface ${name} holding ${net.gateway}/${cidr.prefix}` };
}
