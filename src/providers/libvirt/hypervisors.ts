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
 * with four virtual CPUs per core of this machine and three quarters of its memory.
 */
export function hypervisorsOf(lab: Lab): Hypervisor[] {
  const declared = lab.config.hypervisors;
  if (declared) return Object.entries(declared).map(([name, h]) => ({ name, ...h }));
  return [
    {
      name: LOCAL,
      uri: 'qemu:///system',
      bridge: lab.config.network.name,
      // Virtual CPUs share cores (OpenStack's default allocation ratio is 4 or more): one per core would fit two guests on a 2-core workstation.
      cpus: cpus().length * 4,
      memory: Math.floor((totalmem() / 1048576) * 0.75),
      pool: 'lab',
      accel: 'auto',
    },
  ];
}
