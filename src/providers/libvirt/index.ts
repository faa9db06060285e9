import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Lab } from '../../config/load.js';
import { writeFileAtomicSync } from '../../util/files.js';
import type { ProviderKind } from '../types.js';
import { hypervisorsOf } from './hypervisors.js';
import type { LibvirtProvider } from './provider.js';
import { uriHost } from './uri.js';
import { isIPv4 } from 'node:net';

/** Where the libvirt provider keeps what it learns (removals owed, drained hypervisors, the hypervisors' SSH host keys). */
export const libvirtState = (lab: Lab) => path.join(lab.paths.inventory, 'libvirt');

/**
 * lab's ssh for libvirt's qemu+ssh transport: a hypervisor gone is seen in
 * seconds (not at TCP's timeout), never a password prompt, and hypervisors'
 * host keys pinned at first contact in lab's own known_hosts (beside the
 * user's, which are read too).
 */
function sshWrapper(lab: Lab): string {
  const dir = libvirtState(lab);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, 'ssh');
  const known = path.join(dir, 'known_hosts');
  // ssh_config splits UserKnownHostsFile on blanks: a lab folder with one in its path keeps the user's file only.
  const files = /[\s"'\\$`]/.test(known) ? '' : ` -o 'UserKnownHostsFile=${known} ~/.ssh/known_hosts'`;
  const script = `#!/bin/sh\n# Written by lab: the ssh libvirt's qemu+ssh URIs run (environments.ts hypervisors).\nexec ssh -o BatchMode=yes -o ConnectTimeout=5 -o ServerAliveInterval=3 -o ServerAliveCountMax=3 -o StrictHostKeyChecking=accept-new${files} "$@"\n`;
  // Written when it differs, not by every command and monitor cycle that makes the provider.
  if (!existsSync(file) || readFileSync(file, 'utf8') !== script) writeFileAtomicSync(file, script, 0o700);
  return file;
}

export async function libvirtProvider(lab: Lab): Promise<LibvirtProvider> {
  const { LibvirtProvider } = await import('./provider.js');
  return new LibvirtProvider({
    lab: lab.config.name,
    hypervisors: hypervisorsOf(lab),
    vmsDir: lab.paths.vms,
    stateDir: libvirtState(lab),
    sshCommand: sshWrapper(lab),
  });
}

/** libvirt through virsh, on this machine (qemu:///system) or on hypervisors reached by qemu+ssh URIs. */
export const libvirt: ProviderKind = {
  name: 'libvirt',
  macPrefix: [0x52, 0x54, 0x00],
  hypervisors: true,
  // Not used: a libvirt lab is bridged (the loader refuses mode 'user').
  userNetHost: '10.0.2.2',
  create: libvirtProvider,
  doctor: async (lab) => (await import('./doctor.js')).libvirtDoctor(lab),
  // A hypervisor named by address on the lab's segment (the README's layout): a guest given it would cut the hypervisor off.
  reservedAddresses: (lab) =>
    hypervisorsOf(lab).flatMap((h) => {
      const host = uriHost(h.uri);
      return host && isIPv4(host) ? [{ address: host, holder: `hypervisor ${h.name} (environments.ts hypervisors.${h.name}.uri)` }] : [];
    }),
  scaffold: (source) =>
    source.replace(
      "  network: {",
      `  // Where VMs run: each hypervisor's bridge and this machine's gateway are one L2 segment (README "libvirt").
  // Without hypervisors: qemu:///system on this machine, its bridge network.name.
  // hypervisors: {
  //   hv1: { uri: 'qemu+ssh://root@10.77.0.11/system', bridge: 'br0', cpus: 8, memory: 16384 },
  //   hv2: { uri: 'qemu+ssh://root@10.77.0.12/system', bridge: 'br0', cpus: 8, memory: 16384 },
  // },
  network: {`,
    ),
};
