import { createHash, randomBytes } from 'node:crypto';
import { allHosts, type Lab } from '../config/load.js';
import { parseCidr, intToIp, inCidr } from '../util/ipv4.js';
import type { InventoryData, Lease } from './types.js';
import { LabError, UsageError } from '../errors.js';
import { providerKind } from '../providers/index.js';

/** A MAC of three prefix bytes and a 24-bit suffix. */
export function macFrom(prefix: readonly number[], suffix: number): string {
  return [...prefix, (suffix >> 16) & 255, (suffix >> 8) & 255, suffix & 255]
    .map((b) => b.toString(16).padStart(2, '0'))
    .join(':');
}

/**
 * The MAC and (on a bridged lab) the address of a host, allocated once and
 * kept in the inventory, so that a host keeps them across rebuilds and PXE
 * files can name the MAC before the VM exists. Call inside Inventory.update.
 */
export function leaseFor(data: InventoryData, lab: Lab, name: string): Lease {
  const existing = data.leases[name];
  if (existing && lab.config.network.mode === 'bridge') {
    refuseStaleLeases(data, lab);
    // Leased while the lab ran user networking: the same MAC, and now an address.
    if (!existing.ip) existing.ip = freeAddress(data, lab, name);
  }
  if (existing) return asUsed(lab, refuseTakenAddress(lab, name, existing));
  // Declared hosts are leased in declaration order, so addresses read like environments.ts.
  for (const h of allHosts(lab)) if (!data.leases[h.name]) allocate(data, lab, h.name);
  return data.leases[name] ?? allocate(data, lab, name);
}

/** A lease as the lab's network mode uses it: with user networking an address kept from a bridged past is not the host's. */
export function asUsed(lab: Lab, lease: Lease): Lease {
  return lab.config.network.mode === 'bridge' || !lease.ip ? lease : { mac: lease.mac };
}

/**
 * Leases of an older network.cidr: a host built with one keeps it (its
 * kickstart, its kernel line), so it is not silently moved; the person
 * rebuilds those hosts, releasing their leases.
 */
export function refuseStaleLeases(data: InventoryData, lab: Lab): void {
  if (lab.config.network.mode !== 'bridge') return;
  const cidr = parseCidr(lab.config.network.cidr);
  const stale = Object.entries(data.leases).filter(([, l]) => l.ip && (!inCidr(l.ip, cidr) || l.ip === lab.config.network.gateway));
  if (stale.length === 0) return;
  const names = stale.map(([n, l]) => `${n} (${l.ip})`);
  throw new UsageError(
    `leases outside network.cidr ${lab.config.network.cidr}: ${names.slice(0, 8).join(', ')}${names.length > 8 ? `, and ${names.length - 8} more` : ''}`,
    `the network changed since they were leased: rebuild them with \`lab image del <vm> --force --release\` each (it drops the lease), or put network.cidr back`,
  );
}

/** Addresses of the lab network its provider's own machines hold, by address: who holds each. */
function reserved(lab: Lab): Map<string, string> {
  return new Map((providerKind(lab).reservedAddresses?.(lab) ?? []).map((r) => [r.address, r.holder]));
}

/**
 * A lease made before its address was known to be taken (a hypervisor
 * declared later): the host would take the hypervisor's address, so it is
 * refused, naming both, until the person releases it.
 */
export function refuseTakenAddress(lab: Lab, name: string, lease: Lease): Lease {
  const holder = lease.ip && lab.config.network.mode === 'bridge' ? reserved(lab).get(lease.ip) : undefined;
  if (holder) {
    throw new UsageError(`${name}: its lease ${lease.ip} is the address of ${holder}`, `release it so ${name} gets a free one: \`lab image del ${name} --force --release\``);
  }
  return lease;
}

function freeAddress(data: InventoryData, lab: Lab, name: string): string {
  const cidr = parseCidr(lab.config.network.cidr);
  const used = new Set<string | undefined>([...Object.values(data.leases).map((l) => l.ip), ...reserved(lab).keys()]);
  used.add(lab.config.network.gateway);
  let n = cidr.first;
  while (n <= cidr.last && used.has(intToIp(n))) n++;
  if (n > cidr.last) throw new LabError(`no free address left in ${lab.config.network.cidr} for ${name}`, { hint: 'widen network.cidr in environments.ts' });
  return intToIp(n);
}

/** The lab's own random seed for MACs, made at first use: two labs of the same name get different MACs. */
function macSeed(data: InventoryData): string {
  data.macSeed ??= randomBytes(16).toString('hex');
  return data.macSeed;
}

function allocate(data: InventoryData, lab: Lab, name: string): Lease {
  const usedMacs = new Set(Object.values(data.leases).map((l) => l.mac));
  const prefix = providerKind(lab).macPrefix;
  // Derived from the lab's seed and the host name; a lease keeps its MAC once made.
  let suffix = createHash('sha256').update(`${macSeed(data)}/${name}`).digest().readUIntBE(0, 3);
  while (usedMacs.has(macFrom(prefix, suffix))) suffix = (suffix + 1) & 0xffffff;
  const lease: Lease = { mac: macFrom(prefix, suffix) };
  if (lab.config.network.mode === 'bridge') lease.ip = freeAddress(data, lab, name);
  data.leases[name] = lease;
  return lease;
}
