import { cpus, totalmem } from 'node:os';
import type { Lab } from '../../config/load.js';
import type { HypervisorConfig } from '../../config/schema.js';

/** A hypervisor lab places VMs on, by its name in environments.ts. */
export interface Hypervisor extends HypervisorConfig {
  name: string;
}

/** The name of the one hypervisor a lab without `hypervisors` has. */
export const LOCAL = 'local';

/**
 * The lab's hypervisors as declared; without any, this machine's system
 * libvirt (virt-manager then shows lab's VMs), its bridge the lab network's,
 * with this machine's CPUs and three quarters of its memory.
 */
export function hypervisorsOf(lab: Lab): Hypervisor[] {
  const declared = lab.config.hypervisors;
  if (declared) return Object.entries(declared).map(([name, h]) => ({ name, ...h }));
  return [
    {
      name: LOCAL,
      uri: 'qemu:///system',
      bridge: lab.config.network.name,
      cpus: cpus().length,
      memory: Math.floor((totalmem() / 1048576) * 0.75),
      pool: 'lab',
      accel: 'auto',
    },
  ];
}
