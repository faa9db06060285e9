import type { DeclaredHost } from '../config/load.js';
import { loadService, type Service } from '../deploy/services.js';
import { runOperation, type HostResult } from '../deploy/run.js';
import { parseDeployed, readDeployedCommand } from '../deploy/marker.js';
import type { EnvContext } from './hosts.js';
import { groupOf } from './plan.js';
import { grantTrust } from './trust.js';

export interface ServiceTimeouts {
  parallel: number;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
}

/** The last word on each host's service after a start: the result of its test (or of the step that failed). */
export type ServiceOutcome = Map<string, HostResult>;

/**
 * Bring each group's service to its version on its live hosts, one group at
 * a time (settleGroup), doing only what is missing. Services that follow
 * their peers (a `reconfigure` operation: a load balancer) come last, when
 * the peers serve already.
 */
export async function settleServices(c: EnvContext, live: DeclaredHost[], t: ServiceTimeouts): Promise<ServiceOutcome> {
  const outcome: ServiceOutcome = new Map();
  // Hosts that trust each other hold their environment's key, their peers pinned, before any service of theirs runs.
  for (const env of new Set(live.map((h) => h.env))) {
    if (!c.lab.config.environments[env]?.trust) continue;
    for (const r of await grantTrust(c.lab, c.inventory, env, t)) c.say(r.host, r.ok ? `trusts the hosts of ${env}` : `trust: ${r.detail}`);
  }
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
      const records = (await c.inventory.read()).hosts;
      const recorded = new Map(group.map((h) => [h.name, records[h.name]?.serviceVersion]));
      const steps: SettleSteps = {
        run: (op, hosts) => run(service, op, hosts, version),
        deployedOn: (hosts) => deployedOn(c, service, hosts, t),
        say: c.say,
      };
      for (const [host, r] of await settleGroup(steps, { service: name, version, follows: follows(name), hosts: group, recorded })) outcome.set(host, r);
    }
  }
  return outcome;
}

/** How settleGroup acts on hosts: the operations (over SSH in lab; in its tests, anything). */
export interface SettleSteps {
  /** Run an operation of the group's service at the group's version on these hosts (nothing for none, or an operation the service lacks). */
  run: (op: string, hosts: DeclaredHost[]) => Promise<HostResult[]>;
  /** The version each host's deploy marker shows (absent: none, or it could not be asked). */
  deployedOn: (hosts: DeclaredHost[]) => Promise<Map<string, string | undefined>>;
  say: (host: string, what: string) => void;
}

export interface SettleGroup {
  service: string;
  version: string;
  /** The service follows its peers (it has reconfigure): tell it the live set first. */
  follows: boolean;
  hosts: DeclaredHost[];
  /** The version the inventory recorded as deployed, by host. */
  recorded: Map<string, string | undefined>;
}

/**
 * One group of hosts brought to one version of their service, doing only
 * what is missing: hosts recorded at the version that pass its test are left
 * alone; the others are deployed where the host shows another version or
 * none (whatever the inventory recorded), started, and tested. A start that
 * fails where nothing was deployed in this pass may lack its release: deploy,
 * and start again. The last word on each host is its outcome.
 */
export async function settleGroup(s: SettleSteps, g: SettleGroup): Promise<ServiceOutcome> {
  const outcome: ServiceOutcome = new Map();
  const failed = new Set<string>();
  const note = (rs: HostResult[]) => {
    for (const r of rs) {
      if (r.outcome !== 'ok') {
        failed.add(r.host);
        outcome.set(r.host, r);
      }
    }
  };
  const names = (hs: DeclaredHost[]) => new Set(hs.map((h) => h.name));
  const current = g.hosts.filter((h) => g.recorded.get(h.name) === g.version);
  // A service that follows its peers is told the live set first, so its test sees them.
  const told = g.follows ? await s.run('reconfigure', current) : [];
  note(told);
  const passing = new Set((await s.run('test', current.filter((h) => !failed.has(h.name)))).filter((r) => r.outcome === 'ok').map((r) => r.host));
  // A failed reconfigure is kept as the host's result unless a deploy and start mend it below.
  for (const h of current) failed.delete(h.name);
  for (const h of current) if (passing.has(h.name)) s.say(h.name, `${g.service} ${g.version}: passing its test already`);
  const todo = g.hosts.filter((h) => !passing.has(h.name));
  // What the host shows, not what the inventory last recorded: a VM recreated or killed
  // before its disk caught up comes back without the release the inventory remembers.
  const shown = await s.deployedOn(todo);
  const stale = todo.filter((h) => shown.get(h.name) !== g.version);
  for (const h of stale) if (g.recorded.get(h.name) === g.version) s.say(h.name, `${g.service} ${g.version}: recorded as deployed, but the host shows ${shown.get(h.name) ?? 'nothing'}`);
  note(await s.run('deploy', stale));
  const started = await s.run('start', todo.filter((h) => !failed.has(h.name)));
  const deployedNow = names(stale);
  const retry = started.filter((r) => r.outcome === 'failed' && !deployedNow.has(r.host)).map((r) => g.hosts.find((h) => h.name === r.host)!);
  note(started.filter((r) => !retry.some((h) => h.name === r.host)));
  if (retry.length) {
    for (const h of retry) s.say(h.name, `${g.service} start failed: deploying ${g.version} again`);
    note(await s.run('deploy', retry));
    note(await s.run('start', retry.filter((h) => !failed.has(h.name))));
  }
  for (const r of await s.run('test', todo.filter((h) => !failed.has(h.name)))) outcome.set(r.host, r);
  for (const h of g.hosts) {
    if (!passing.has(h.name)) continue;
    const reloaded = told.find((r) => r.host === h.name && r.changed !== false);
    outcome.set(h.name, reloaded ?? { host: h.name, operation: 'test', env: h.env, role: h.role, version: g.version, outcome: 'ok', ms: 0, detail: 'unchanged', output: [] });
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

/**
 * Take hosts out of their peers' view before they go away (a restart, a
 * scale-down): marked down, so the followers' next render leaves them out,
 * and the followers (the balancer) told now, while the hosts still serve.
 * Requests in flight finish (nginx reloads gracefully); new ones go to the
 * others. Stopping first and telling after lost the requests that reached a
 * host as it powered off.
 */
export async function drain(c: EnvContext, leaving: string[], live: DeclaredHost[], t: ServiceTimeouts): Promise<HostResult[]> {
  const gone = new Set(leaving);
  const now = new Date().toISOString();
  await c.inventory.update((d) => {
    for (const name of gone) {
      const h = d.hosts[name];
      if (h && h.state === 'up') {
        h.state = 'down';
        h.lastProbe = now;
      }
    }
  });
  for (const name of gone) c.say(name, 'draining: its peers are told it is leaving');
  return reconfigure(c, live.filter((h) => !gone.has(h.name)), t);
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
