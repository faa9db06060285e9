import { isLive } from '../hosts/manager.js';
import type { Lab } from '../config/load.js';
import type { Inventory } from '../inventory/store.js';
import type { Provider, VmState } from '../providers/types.js';
import type { HostState } from '../inventory/types.js';
import { groupSize } from '../config/load.js';
import { envHosts, environment } from './plan.js';

export interface HostStatus {
  host: string;
  env: string;
  role: string;
  vm: VmState;
  /** Where its VM runs, with provider libvirt. */
  hypervisor?: string;
  /** The inventory's word: up, down, installing, stalled; none before any callback. */
  state: HostState | 'none';
  address?: string;
  /** Called back and up at the last sweep, with its VM running. */
  live: boolean;
  service?: string;
  version?: string;
  lastCallback?: string;
}

export async function envStatus(lab: Lab, inventory: Inventory, provider: Provider, env: string): Promise<HostStatus[]> {
  const records = (await inventory.read()).hosts;
  return Promise.all(
    envHosts(lab, env).map(async (h): Promise<HostStatus> => {
      const r = records[h.name];
      const info = await provider.info(h.name);
      const vm = info.state;
      return {
        host: h.name,
        env,
        role: h.role,
        vm,
        hypervisor: info.hypervisor,
        state: r?.state ?? 'none',
        address: r?.ip,
        live: vm === 'running' && isLive(r),
        service: h.service,
        version: r?.serviceVersion,
        lastCallback: r?.lastCallback,
      };
    }),
  );
}

export interface EnvSummary {
  env: string;
  groups: string;
  declared: number;
  running: number;
  live: number;
}

export async function envList(lab: Lab, inventory: Inventory, provider: Provider): Promise<EnvSummary[]> {
  const out: EnvSummary[] = [];
  for (const env of Object.keys(lab.config.environments)) {
    const rows = await envStatus(lab, inventory, provider, env);
    const groups = environment(lab, env)
      .groups.map((g) => `${g.role}:${g.count ?? `${groupSize(g, 'min')}-${groupSize(g, 'all')}`}${g.service ? ` ${g.service}` : ''}`)
      .join(', ');
    out.push({ env, groups, declared: rows.length, running: rows.filter((r) => r.vm === 'running').length, live: rows.filter((r) => r.live).length });
  }
  return out;
}
