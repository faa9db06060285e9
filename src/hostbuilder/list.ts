import type { Lab } from '../config/load.js';
import type { Inventory } from '../inventory/store.js';
import { installProgress, type InstallProgress } from '../inventory/stages.js';
import type { Provider, VmState } from '../providers/types.js';

/** One line of `lab image list`: an image of environments.ts, or a VM of this lab the hypervisor has and lab does not. */
export interface ImageRow {
  name: string;
  distro?: string;
  install?: string;
  state: string;
  vm: VmState | 'unknown to lab';
  hypervisor?: string;
  /** The image VM's address and last callback: images are not hosts, so only this list shows them. */
  address?: string;
  lastCallback?: string;
  stage?: InstallProgress;
  /** When its last build started, and how long it took once finished. */
  started?: string;
  seconds?: number;
  reason?: string;
}

export async function imageRows(lab: Lab, inventory: Inventory, provider: Provider): Promise<ImageRow[]> {
  const data = await inventory.read();
  const rows = await Promise.all(
    Object.entries(lab.config.images).map(async ([name, cfg]): Promise<ImageRow> => {
      const rec = data.images[name];
      const vm = await provider.info(name);
      const machine = data.imageVms[name];
      return {
        name,
        distro: cfg.distro,
        install: cfg.install,
        state: rec?.state ?? 'not built',
        vm: vm.state,
        hypervisor: vm.hypervisor,
        address: machine?.ip,
        lastCallback: machine?.lastCallback,
        stage: installProgress(machine),
        started: rec?.started,
        seconds: rec?.finished ? Math.round((Date.parse(rec.finished) - Date.parse(rec.started)) / 1000) : undefined,
        reason: rec?.reason,
      };
    }),
  );
  const strays = ((await provider.strays?.()) ?? []).map((name): ImageRow => ({ name, state: 'stray', vm: 'unknown to lab', reason: `the hypervisor has it, lab has no record: lab image del ${name} --force` }));
  return [...rows, ...strays];
}
