import { HypervisorDown } from './virsh.js';
import type { LibvirtProvider } from './provider.js';
import type { VmState } from '../types.js';

/** What `lab hypervisor list` and `lab doctor` know of one hypervisor, asked over one virsh shell. */
export interface HypervisorFacts {
  name: string;
  uri: string;
  reachable: boolean;
  /** Why it is not (what ssh or libvirt said). */
  reason?: string;
  libvirt?: string;
  qemu?: string;
  /** The hypervisor offers KVM; accel says what lab uses. */
  kvm?: boolean;
  accel: 'kvm' | 'tcg';
  pool?: string;
  /** The declared bridge is an active interface there. */
  bridge?: boolean;
  capacity: { cpus: number; memoryMiB: number };
  used: { cpus: number; memoryMiB: number };
  drained: boolean;
  vms: { name: string; state: VmState }[];
  /** Disk volumes lab's records name that the pool does not hold. */
  missingVolumes: string[];
}

export async function hypervisorFacts(p: LibvirtProvider, name: string): Promise<HypervisorFacts> {
  const h = p.hypervisors.find((x) => x.name === name)!;
  const room = p.rooms().find((r) => r.name === name)!;
  const recs = p.state.records().filter((r) => r.hypervisor === name);
  const facts: HypervisorFacts = {
    name,
    uri: h.uri,
    reachable: false,
    accel: h.accel === 'kvm' ? 'kvm' : 'tcg',
    capacity: { cpus: h.cpus, memoryMiB: h.memory },
    used: { cpus: room.usedCpus, memoryMiB: room.usedMemoryMiB },
    drained: p.state.drained().includes(name),
    vms: recs.map((r) => ({ name: r.spec.name, state: 'unreachable' as VmState })),
    missingVolumes: [],
  };
  const v = p.session(name);
  try {
    facts.pool = await p.poolPath(name);
    facts.reachable = true;
    const version = await v.call(['version', '--daemon']);
    facts.libvirt = /Running against daemon: (\S+)/.exec(version)?.[1];
    facts.qemu = /Running hypervisor: (.+)/.exec(version)?.[1]?.trim();
    facts.kvm = await p.offersKvm(name);
    if (h.accel === 'auto') facts.accel = facts.kvm ? 'kvm' : 'tcg';
    const ifaces = (await v.tryCall(['iface-list', '--all'])) ?? '';
    facts.bridge = ifaces.split('\n').some((l) => l.trim().split(/\s+/)[0] === h.bridge && /\sactive\s/.test(l));
    const vols = new Set(((await v.tryCall(['vol-list', '--pool', h.pool])) ?? '').split('\n').map((l) => l.trim().split(/\s+/)[0]));
    facts.missingVolumes = recs.map((r) => r.disk).filter((d) => !vols.has(d));
    facts.vms = await Promise.all(recs.map(async (r) => ({ name: r.spec.name, state: (await p.info(r.spec.name)).state })));
  } catch (e) {
    if (!(e instanceof HypervisorDown)) throw e;
    facts.reachable = false;
    facts.reason = e.reason;
  }
  return facts;
}

export function allFacts(p: LibvirtProvider): Promise<HypervisorFacts[]> {
  return Promise.all(p.hypervisors.map((h) => hypervisorFacts(p, h.name)));
}
