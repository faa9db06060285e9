import { allHosts, type Lab } from '../config/load.js';
import type { Lease } from '../inventory/types.js';
import { hostContext, type Serving, type HostContext } from './context.js';
import { renderTemplate } from './render.js';

/** The PXE templates in pxe/, and where each lands in the TFTP tree. */
export const PXE_TEMPLATES = {
  host: 'pxe/pxelinux.cfg.njk',
  default: 'pxe/default.njk',
  hostIpxe: 'pxe/host.ipxe.njk',
  bootIpxe: 'pxe/boot.ipxe.njk',
} as const;

export interface PxeFile {
  /** Relative to the TFTP root (and to /pxe/ on the server). */
  path: string;
  content: string;
}

/** pxelinux names per-host files after the MAC: 01- (Ethernet) then the MAC with dashes. */
export function pxelinuxName(mac: string): string {
  return `pxelinux.cfg/01-${mac.replace(/:/g, '-')}`;
}

/**
 * The whole TFTP-ready tree: pxelinux.cfg/default (boots the local disk, so an
 * unknown machine is never reinstalled), pxelinux.cfg/01-<mac> per host,
 * boot.ipxe (picks the host by MAC) and ipxe/<host>.ipxe.
 */
export function pxeTree(lab: Lab, leases: Map<string, Lease>, serving: Serving): PxeFile[] {
  const hosts: HostContext[] = allHosts(lab).map((h) => hostContext(lab, h, leases.get(h.name)!, serving));
  const all = { hosts, server: { url: serving.serverUrl }, lab: { name: lab.config.name } };
  const files: PxeFile[] = [
    { path: 'pxelinux.cfg/default', content: renderTemplate(lab, PXE_TEMPLATES.default, all) },
    { path: 'boot.ipxe', content: renderTemplate(lab, PXE_TEMPLATES.bootIpxe, all) },
  ];
  for (const ctx of hosts) {
    files.push({ path: pxelinuxName(ctx.host.mac), content: renderTemplate(lab, PXE_TEMPLATES.host, ctx) });
    files.push({ path: `ipxe/${ctx.host.name}.ipxe`, content: renderTemplate(lab, PXE_TEMPLATES.hostIpxe, ctx) });
  }
  return files;
}
