import type { DeclaredHost, Lab } from '../config/load.js';
import type { Inventory } from '../inventory/store.js';
import { loadService, type Service } from '../deploy/services.js';
import { runOperation } from '../deploy/run.js';
import type { OpContext } from '../deploy/types.js';
import type { ServiceTimeouts } from '../env/services.js';

/** What one interval learns about one live host. */
export interface Figures {
  /** 1-minute load average per CPU; absent when it could not be read. */
  load?: number;
  /** The service's health check (its `health` operation, else its `test`) passed; absent for a host without either. */
  healthy?: boolean;
  /** How long the health check took, ms. */
  latencyMs?: number;
  error?: string;
}

/**
 * One SSH connection per host per interval: its load average, then its
 * service's health check and its latency from the lab host. The check is the
 * service's `health` operation where it has one (a host's own health, e.g. a
 * balancer answering), else its `test`: a host must not be replaced for its
 * upstreams' failures.
 */
export async function measure(lab: Lab, inventory: Inventory, hosts: DeclaredHost[], t: ServiceTimeouts): Promise<Map<string, Figures>> {
  const figures = new Map<string, Figures>();
  const byService = new Map<string, DeclaredHost[]>();
  for (const h of hosts) byService.set(h.service ?? '', [...(byService.get(h.service ?? '') ?? []), h]);
  for (const [name, group] of byService) {
    const service: Service = name
      ? await loadService(lab, name)
      : { name: '(none)', dir: lab.paths.services, definition: { role: group[0]!.role, versions: ['-'], operations: {} } };
    const ops = service.definition.operations;
    const named = Object.hasOwn(ops, 'health') ? ops.health : Object.hasOwn(ops, 'test') ? ops.test : undefined;
    // A playbook's test runs over all its hosts at once: the monitor measures a host's own, so it goes by load alone there.
    const check = typeof named === 'function' ? named : undefined;
    const op = async (ctx: OpContext) => {
      const f: Figures = {};
      const avg = await ctx.run('cat /proc/loadavg; grep -c ^processor /proc/cpuinfo', { allowFail: true, timeout: 10 });
      const [loadavg, cpus] = avg.stdout.trim().split('\n');
      const one = Number(loadavg?.split(' ')[0]);
      if (avg.code === 0 && Number.isFinite(one)) f.load = Math.round((one / Math.max(1, Number(cpus) || 1)) * 1000) / 1000;
      if (check) {
        const t0 = Date.now();
        try {
          await check(ctx);
          f.healthy = true;
        } catch (e) {
          f.healthy = false;
          f.error = e instanceof Error ? e.message : String(e);
        }
        f.latencyMs = Date.now() - t0;
      }
      return { data: f };
    };
    const results = await runOperation({ lab, inventory, service, operation: 'measure', op, selection: { hosts: group.map((h) => h.name) }, ...t });
    for (const r of results) {
      // A host that could not be reached gives no figures (and so never drives a scale-down), and fails its health check.
      figures.set(r.host, r.outcome === 'ok' ? (r.data as Figures) : { healthy: check ? false : undefined, error: r.detail });
    }
  }
  return figures;
}
