import type { DeclaredHost } from '../config/load.js';
import { loadService, type Service } from '../deploy/services.js';
import { runOperation, type HostResult } from '../deploy/run.js';
import { parseDeployed, readDeployedCommand } from '../deploy/marker.js';
import type { EnvContext } from './hosts.js';
import { groupOf } from './plan.js';

export interface ServiceTimeouts {
  parallel: number;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
}

/** The last word on each host's service after a start: the result of its test (or of the step that failed). */
export type ServiceOutcome = Map<string, HostResult>;

/**
 * Bring each group's service to its version on its live hosts, doing only
 * what is missing: hosts that pass `test` at the wanted version are left
 * alone; the others get `deploy` (when their version differs) and `start`,
 * then `test` again. Services that follow their peers (a `reconfigure`
 * operation: a load balancer) come last and are told the live set first.
 */
export async function settleServices(c: EnvContext, live: DeclaredHost[], t: ServiceTimeouts): Promise<ServiceOutcome> {
  const outcome: ServiceOutcome = new Map();
  const byService = new Map<string, DeclaredHost[]>();
  for (const h of live) {
    if (!h.service) continue;
    byService.set(h.service, [...(byService.get(h.service) ?? []), h]);
  }
  const services = new Map<string, Service>();
  for (const name of byService.keys()) services.set(name, await loadService(c.lab, name));

  const run = async (service: Service, op: string, hosts: DeclaredHost[], version?: string): Promise<HostResult[]> => {
    if (hosts.length === 0 || !Object.hasOwn(service.definition.operations, op)) return [];
    return runOperation({
      lab: c.lab,
      inventory: c.inventory,
      service,
      operation: op,
      selection: { hosts: hosts.map((h) => h.name), version },
      ...t,
      onResult: (r) => c.say(r.host, `${service.name} ${op}: ${r.outcome}${r.detail ? ` (${r.detail})` : ''}`),
    });
  };

  // Services that follow their peers (a load balancer) come last, when the peers serve already.
  const follows = (n: string) => Object.hasOwn(services.get(n)!.definition.operations, 'reconfigure');
  const order = [...byService.keys()].sort((a, b) => Number(follows(a)) - Number(follows(b)));
  for (const name of order) {
    const hosts = byService.get(name)!;
    const service = services.get(name)!;
    // One version per group; a group without one runs the service's newest.
    const byVersion = new Map<string, DeclaredHost[]>();
    for (const h of hosts) {
      const v = groupOf(c.lab, h).version ?? service.definition.versions.at(-1)!;
      byVersion.set(v, [...(byVersion.get(v) ?? []), h]);
    }
    for (const [version, group] of byVersion) {
      const failed = new Set<string>();
      const note = (rs: HostResult[]) => {
        for (const r of rs) {
          if (r.outcome !== 'ok') {
            failed.add(r.host);
            outcome.set(r.host, r);
          }
        }
      };
      const records = (await c.inventory.read()).hosts;
      const current = group.filter((h) => records[h.name]?.serviceVersion === version);
      // A service that follows its peers is told the live set first, so its test sees them.
      const told = follows(name) ? await run(service, 'reconfigure', current, version) : [];
      note(told);
      const passing = new Set((await run(service, 'test', current.filter((h) => !failed.has(h.name)), version)).filter((r) => r.outcome === 'ok').map((r) => r.host));
      // A failed reconfigure is kept as the host's result unless a deploy and start mend it below.
      for (const h of current) failed.delete(h.name);
      for (const h of current) if (passing.has(h.name)) c.say(h.name, `${name} ${version}: passing its test already`);
      const todo = group.filter((h) => !passing.has(h.name));
      // What the host shows, not what the inventory last recorded: a VM recreated or killed
      // before its disk caught up comes back without the release the inventory remembers.
      const shown = await deployedOn(c, service, todo, t);
      const stale = todo.filter((h) => shown.get(h.name) !== version);
      for (const h of stale) if (records[h.name]?.serviceVersion === version) c.say(h.name, `${name} ${version}: recorded as deployed, but the host shows ${shown.get(h.name) ?? 'nothing'}`);
      note(await run(service, 'deploy', stale, version));
      const started = await run(service, 'start', todo.filter((h) => !failed.has(h.name)), version);
      // A start that fails where nothing was deployed now may be missing its release: deploy, then start again.
      const retry = started.filter((r) => r.outcome === 'failed' && !stale.some((h) => h.name === r.host)).map((r) => group.find((h) => h.name === r.host)!);
      note(started.filter((r) => !retry.some((h) => h.name === r.host)));
      if (retry.length) {
        for (const h of retry) c.say(h.name, `${name} start failed: deploying ${version} again`);
        note(await run(service, 'deploy', retry, version));
        note(await run(service, 'start', retry.filter((h) => !failed.has(h.name)), version));
      }
      for (const r of await run(service, 'test', todo.filter((h) => !failed.has(h.name)), version)) outcome.set(r.host, r);
      for (const h of group) {
        if (!passing.has(h.name)) continue;
        const reloaded = told.find((r) => r.host === h.name && r.changed !== false);
        outcome.set(h.name, reloaded ?? { host: h.name, operation: 'test', env: h.env, role: h.role, version, outcome: 'ok', ms: 0, detail: 'unchanged', output: [] });
      }
    }
  }
  return outcome;
}

/** The version each host's deploy marker shows (absent: nothing deployed, or the host could not be asked). */
async function deployedOn(c: EnvContext, service: Service, hosts: DeclaredHost[], t: ServiceTimeouts): Promise<Map<string, string | undefined>> {
  if (hosts.length === 0) return new Map();
  const results = await runOperation({
    lab: c.lab,
    inventory: c.inventory,
    service,
    operation: 'deployed',
    op: async (ctx) => ({ data: parseDeployed((await ctx.run(readDeployedCommand(service.name))).stdout) }),
    selection: { hosts: hosts.map((h) => h.name) },
    ...t,
  });
  return new Map(results.filter((r) => r.outcome === 'ok').map((r) => [r.host, r.data as string | undefined]));
}

/** Tell the services that follow their peers (a `reconfigure` operation) who is live now. */
export async function reconfigure(c: EnvContext, live: DeclaredHost[], t: ServiceTimeouts, loaded = new Map<string, Service>()): Promise<HostResult[]> {
  const results: HostResult[] = [];
  const names = [...new Set(live.flatMap((h) => (h.service ? [h.service] : [])))];
  for (const name of names) {
    const service = loaded.get(name) ?? (await loadService(c.lab, name));
    if (!Object.hasOwn(service.definition.operations, 'reconfigure')) continue;
    const hosts = live.filter((h) => h.service === name);
    results.push(
      ...(await runOperation({
        lab: c.lab,
        inventory: c.inventory,
        service,
        operation: 'reconfigure',
        selection: { hosts: hosts.map((h) => h.name) },
        ...t,
        onResult: (r) => c.say(r.host, `${name} reconfigure: ${r.outcome}${r.detail ? ` (${r.detail})` : ''}`),
      })),
    );
  }
  return results;
}
