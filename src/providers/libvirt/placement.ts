import { UsageError, LabError } from '../../errors.js';
import type { Placement } from '../../config/schema.js';

/** A hypervisor as placement sees it: what the lab declared it may use, and what lab put there. */
export interface Room {
  name: string;
  cpus: number;
  memoryMiB: number;
  /** What lab's VMs there take (each VM's cpus and memory, running or not: a stopped VM comes back). */
  usedCpus: number;
  usedMemoryMiB: number;
  /** Why it takes nothing new now: it does not answer, or it is drained. */
  unavailable?: string;
  /** Lab's VMs there by group (env/role): spread keeps a group's hosts apart. */
  groups?: Record<string, number>;
}

export interface Want {
  vm: string;
  cpus: number;
  memoryMiB: number;
  hypervisor?: string;
  placement: Placement;
  /** Its group (env/role). */
  group?: string;
}

const freeMem = (r: Room) => r.memoryMiB - r.usedMemoryMiB;
const freeCpus = (r: Room) => r.cpus - r.usedCpus;

/**
 * Where a new VM goes. spread: the hypervisor with the fewest hosts of its
 * group, then the most free memory (then CPUs, then name), so a group's
 * hosts land on different machines while they have room and one machine
 * going away takes as few of them as it can; pack: the fullest one that
 * still has room, so whole machines stay free. A group naming its
 * hypervisor gets that one.
 */
export function place(rooms: Room[], want: Want): string {
  const fits = (r: Room) => freeMem(r) >= want.memoryMiB && freeCpus(r) >= want.cpus;
  const figures = (r: Room) => `${r.name} ${r.unavailable ?? `${freeCpus(r)} CPUs and ${freeMem(r)} MiB free`}`;
  if (want.hypervisor) {
    const r = rooms.find((x) => x.name === want.hypervisor);
    if (!r) throw new UsageError(`${want.vm}: no hypervisor "${want.hypervisor}"`);
    if (r.unavailable) throw new LabError(`${want.vm}: its group runs on hypervisor ${r.name}, which ${r.unavailable}`);
    if (!fits(r)) throw new LabError(`${want.vm}: hypervisor ${r.name} has no room for ${want.cpus} CPUs and ${want.memoryMiB} MiB (${figures(r)}); raise its cpus/memory in environments.ts or stop hosts there`);
    return r.name;
  }
  const open = rooms.filter((r) => !r.unavailable && fits(r));
  if (open.length === 0) {
    throw new LabError(`${want.vm}: no hypervisor has room for ${want.cpus} CPUs and ${want.memoryMiB} MiB: ${rooms.map(figures).join('; ')}`);
  }
  const sign = want.placement === 'pack' ? 1 : -1;
  const peers = (r: Room) => (want.placement === 'spread' && want.group ? (r.groups?.[want.group] ?? 0) : 0);
  open.sort((a, b) => peers(a) - peers(b) || sign * (freeMem(a) - freeMem(b)) || sign * (freeCpus(a) - freeCpus(b)) || a.name.localeCompare(b.name));
  return open[0]!.name;
}
