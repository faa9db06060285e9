import type { Lab } from '../../config/load.js';
import type { Check } from '../../doctor/types.js';
import { which } from '../../util/exec.js';
import { allFacts } from './facts.js';
import { libvirtProvider } from './index.js';

/** Each hypervisor: it answers, lab's pool is there, its bridge is up, the disks lab placed there are present. One line per failure, with its fix. */
export async function libvirtDoctor(lab: Lab): Promise<Check[]> {
  if (!(await which('virsh'))) return [{ name: 'virsh', status: 'fail', detail: 'virsh not found', fix: 'apt-get install libvirt-clients' }];
  const p = await libvirtProvider(lab);
  try {
    const checks: Check[] = [];
    for (const f of await allFacts(p)) {
      const at = `hypervisor ${f.name}`;
      if (!f.reachable) {
        checks.push({ name: at, status: 'fail', detail: `${f.uri}: ${f.reason}`, fix: `check that ${f.name} is up, runs libvirtd, and that \`virsh -c '${f.uri}' list\` works from this machine` });
        continue;
      }
      checks.push({ name: at, status: 'ok', detail: `${f.uri}: libvirt ${f.libvirt ?? '?'}, ${f.qemu ?? 'QEMU ?'}, ${f.accel === 'kvm' ? 'KVM' : 'TCG'}, pool at ${f.pool}` });
      if (f.kvm === false) checks.push({ name: `${at} kvm`, status: 'warn', detail: 'no KVM there: guests run under TCG (slower, still works)', fix: `enable virtualization on ${f.name}` });
      if (!f.bridge) {
        const h = p.hypervisors.find((x) => x.name === f.name)!;
        checks.push({ name: `${at} bridge`, status: 'fail', detail: `no active interface ${h.bridge} there: its guests would have no network`, fix: `make bridge ${h.bridge} on ${f.name}, on one L2 segment with this machine's gateway (README "libvirt")` });
      }
      if (f.missingVolumes.length) {
        checks.push({ name: `${at} disks`, status: 'fail', detail: `pool ${f.pool} lacks ${f.missingVolumes.join(', ')}`, fix: 'lab image del <vm> --force, then build or start it again' });
      }
    }
    return checks;
  } finally {
    p.close();
  }
}
