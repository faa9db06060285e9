import { createHash } from 'node:crypto';
import { allHosts, type Lab } from '../config/load.js';
import { parseCidr, intToIp } from '../util/ipv4.js';
import type { InventoryData, Lease } from './types.js';
import { LabError } from '../errors.js';
import { providerKind } from '../providers/index.js';

function macFrom(prefix: readonly number[], suffix: number): string {
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
  if (existing) return existing;
  // Declared hosts are leased in declaration order, so addresses read like environments.ts.
  for (const h of allHosts(lab)) if (!data.leases[h.name]) allocate(data, lab, h.name);
  return data.leases[name] ?? allocate(data, lab, name);
}

function allocate(data: InventoryData, lab: Lab, name: string): Lease {
  const usedMacs = new Set(Object.values(data.leases).map((l) => l.mac));
  const prefix = providerKind(lab).macPrefix;
  // Derived from the lab and host name so the same lab gets the same MACs when rebuilt from scratch.
  let suffix = createHash('sha256').update(`${lab.config.name}/${name}`).digest().readUIntBE(0, 3);
  while (usedMacs.has(macFrom(prefix, suffix))) suffix = (suffix + 1) & 0xffffff;
  const lease: Lease = { mac: macFrom(prefix, suffix) };
  if (lab.config.network.mode === 'bridge') {
    const cidr = parseCidr(lab.config.network.cidr);
    const used = new Set(Object.values(data.leases).map((l) => l.ip));
    used.add(lab.config.network.gateway);
    let n = cidr.first;
    while (n <= cidr.last && used.has(intToIp(n))) n++;
    if (n > cidr.last) throw new LabError(`no free address left in ${lab.config.network.cidr} for ${name}`, { hint: 'widen network.cidr in environments.ts' });
    lease.ip = intToIp(n);
  }
  data.leases[name] = lease;
  return lease;
}
