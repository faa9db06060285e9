import { setTimeout as sleep } from 'node:timers/promises';
import type { EnvContext } from '../hosts.js';
import { LabError, UsageError, messageOf } from '../../errors.js';
import { mapBounded } from '../../util/pool.js';
import { keyed } from '../../inventory/types.js';
import { loadService } from '../../deploy/services.js';
import { runOperation, type HostResult } from '../../deploy/run.js';
import { envHosts } from '../plan.js';
import { liveHosts } from '../start.js';
import { reconfigure, type ServiceTimeouts } from '../services.js';
import { readSnapshot, type EnvSnapshot } from './store.js';
import { withHold } from './hold.js';
import { snapshotsOf } from './take.js';

export interface HostRestore {
  host: string;
  outcome: 'running' | 'stopped' | 'left-out' | 'failed';
  detail?: string;
}

export interface RestoreReport {
  snapshot: EnvSnapshot;
  hosts: HostRestore[];
  /** After the restore: each live host's clock set, its followers told, its service's test. */
  services: HostResult[];
}

/**
 * `lab env restore <env> <name>`: the environment as the snapshot caught it.
 * Every host's VM is checked first (it exists and holds the snapshot), so a
 * restore that cannot be whole changes nothing. Then hosts the snapshot did
 * not have are stopped, the others restored (running ones paused, then all
 * resumed together), the inventory given back what it knew of them (keys,
 * versions, leases), their clocks set to now, the balancer told who is live,
 * and each service's test run.
 */
export async function restoreSnapshot(c: EnvContext, env: string, name: string, o: ServiceTimeouts): Promise<RestoreReport> {
  const snaps = snapshotsOf(c);
  const snap = readSnapshot(c.lab.paths, env, name);
  if (snap.provider !== c.provider.name) throw new UsageError(`snapshot "${name}" of ${env} was taken with provider ${snap.provider}; this lab uses ${c.provider.name}`);
  const declared = envHosts(c.lab, env);
  const undeclared = Object.keys(snap.hosts).filter((n) => !declared.some((h) => h.name === n));
  if (undeclared.length) throw new UsageError(`snapshot "${name}" holds hosts environment ${env} no longer declares: ${undeclared.join(', ')}`, 'declare them again in environments.ts to restore it');

  return withHold(c.lab.paths, env, 'restore', name, async () => {
    const problems: string[] = [];
    await Promise.all(
      Object.keys(snap.hosts).map(async (n) => {
        const vm = await c.provider.info(n);
        if (vm.state === 'missing') problems.push(`${n}: its VM is gone (deleted or rebuilt since the snapshot)`);
        else if (!['running', 'paused', 'stopped'].includes(vm.state)) problems.push(`${n}: its VM is ${vm.state}`);
        else if (!(await snaps.list(n)).includes(snap.tag)) problems.push(`${n}: its VM no longer holds the snapshot (rebuilt since?)`);
      }),
    );
    const data = await c.inventory.read();
    for (const [n, h] of Object.entries(snap.hosts)) {
      const holder = h.lease?.ip && Object.entries(data.leases).find(([other, l]) => other !== n && l.ip === h.lease!.ip)?.[0];
      if (holder) problems.push(`${n}: its address ${h.lease!.ip} is leased to ${holder} now`);
    }
    if (problems.length) throw new LabError(`cannot restore snapshot "${name}" of ${env}, nothing was changed: ${problems.sort().join('; ')}`);

    const leftOut = declared.filter((h) => !snap.hosts[h.name]);
    const results = await mapBounded([...Object.keys(snap.hosts), ...leftOut.map((h) => h.name)], o.parallel, async (n): Promise<HostRestore> => {
      try {
        const held = snap.hosts[n];
        if (!held) {
          const state = (await c.provider.info(n)).state;
          if (state === 'missing' || state === 'stopped') return { host: n, outcome: 'left-out', detail: 'not in the snapshot; no VM running' };
          await c.provider.stop(n, 30_000);
          c.say(n, 'stopped: the snapshot did not have it');
          return { host: n, outcome: 'left-out', detail: 'stopped: not in the snapshot' };
        }
        await snaps.restore(n, snap.tag, held.vm === 'running');
        return { host: n, outcome: held.vm };
      } catch (e) {
        const detail = messageOf(e).split('\n')[0];
        c.say(n, `restore failed: ${detail}`);
        return { host: n, outcome: 'failed', detail };
      }
    });
    const running = results.filter((r) => r.outcome === 'running').map((r) => r.host);

    const now = new Date().toISOString();
    await c.inventory.update((d) => {
      for (const [n, h] of Object.entries(snap.hosts)) {
        if (results.find((r) => r.host === n)?.outcome === 'failed') continue;
        if (h.record) d.hosts[n] = { ...h.record, state: h.vm === 'running' ? 'up' : 'down', lastProbe: now, refusedKey: undefined };
        if (h.lease) d.leases[n] = h.lease;
      }
      for (const h of leftOut) {
        const r = d.hosts[h.name];
        if (r && r.state !== 'down') Object.assign(r, { state: 'down', lastProbe: now });
      }
      d.macSeed ??= snap.macSeed;
      // The monitor takes the restored hosts as its members and their live set as seen: it does not settle them back to environments.ts.
      if (d.monitors?.[env]) d.monitors = keyed({ ...d.monitors, [env]: { ...d.monitors[env]!, members: running, live: running, started: {}, groups: {} } });
    });
    await Promise.all(running.map((n) => snaps.resume(n).catch((e) => c.say(n, `could not resume it: ${messageOf(e)}`))));
    for (const n of running) c.say(n, 'restored running');

    // A resumed guest answers within moments; one that does not is this restore's failure, not a host left out quietly.
    let live = await liveHosts(c, env);
    const silent = () => running.filter((n) => !live.some((h) => h.name === n));
    for (const end = Date.now() + 60_000; silent().length && Date.now() < end; ) {
      await sleep(1000);
      live = await liveHosts(c, env);
    }
    for (const n of silent()) Object.assign(results.find((r) => r.host === n)!, { outcome: 'failed', detail: 'restored, but it does not answer within 60 s' });
    const services: HostResult[] = [];
    // Their clocks stood still since the snapshot: set to now before anything reads them.
    services.push(...(await onEachService(c, live, 'clock', o, async (ctx) => void (await ctx.run(`date -u -s @${Math.floor(Date.now() / 1000)} >/dev/null`)))));
    services.push(...(await reconfigure(c, live, o)));
    services.push(...(await onEachService(c, live, 'test', o)));
    return { snapshot: snap, hosts: results, services };
  });
}

/** An operation on every live host with a service, by service (op: a function of lab's own instead of the service's operation). */
async function onEachService(c: EnvContext, live: { name: string; service?: string }[], operation: string, t: ServiceTimeouts, op?: Parameters<typeof runOperation>[0]['op']): Promise<HostResult[]> {
  const out: HostResult[] = [];
  for (const name of [...new Set(live.flatMap((h) => (h.service ? [h.service] : [])))]) {
    const service = await loadService(c.lab, name);
    if (!op && !Object.hasOwn(service.definition.operations, operation)) continue;
    const hosts = live.filter((h) => h.service === name).map((h) => h.name);
    out.push(...(await runOperation({ lab: c.lab, inventory: c.inventory, service, operation, op, selection: { hosts }, ...t, onResult: (r) => c.say(r.host, `${name} ${operation}: ${r.outcome}${r.detail ? ` (${r.detail})` : ''}`) })));
  }
  return out;
}
