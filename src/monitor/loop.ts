import { watch } from 'chokidar';
import { groupSize, loadLab, type DeclaredHost, type Lab } from '../config/load.js';
import { Inventory } from '../inventory/store.js';
import type { MonitorRecord } from '../inventory/types.js';
import { filterHosts } from '../hosts/manager.js';
import { providerFor } from '../providers/index.js';
import { callbackServer } from '../server/serve.js';
import { messageOf } from '../errors.js';
import { createVm, type EnvContext } from '../env/hosts.js';
import { settleServices, reconfigure, type ServiceTimeouts } from '../env/services.js';
import { environment } from '../env/plan.js';
import { decide, emptyGroupState, type Decision, type HostObservation, type PolicyConfig } from './policy.js';
import { measure, type Figures } from './measure.js';

export interface MonitorOptions {
  intervalMs: number;
  policy: PolicyConfig;
  /** Decide and log, change nothing. */
  dryRun: boolean;
  /** A host started this long ago without a callback counts as lost. */
  bootDeadlineMs: number;
  timeouts: ServiceTimeouts;
  /** One JSON object per line: decisions, config reloads, errors. */
  log: (entry: Record<string, unknown>) => void;
  signal: AbortSignal;
  now?: () => number;
}

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * `lab monitor <env>`: every interval, refresh the live hosts, reconcile the
 * groups against the real VMs, bring new hosts' services up, measure load and
 * health, decide, act, and keep the state in the inventory so a restart picks
 * up where it was. environments.ts edits apply at the next cycle (a broken one
 * is reported, the last good config kept); a new line in booted.log starts a
 * cycle at once.
 */
export async function runMonitor(labDir: string, env: string, o: MonitorOptions): Promise<void> {
  let lab = await loadLab(labDir);
  environment(lab, env);
  const inventory = new Inventory(lab.paths);
  const now = o.now ?? Date.now;
  let reload = false;
  let wake: (() => void) | undefined;
  const watcher = watch([lab.paths.config, lab.paths.bootLog], { ignoreInitial: true, awaitWriteFinish: { stabilityThreshold: 100 } });
  watcher.on('all', (_event, file) => {
    if (file === lab.paths.config) reload = true;
    else wake?.();
  });
  // Boot callbacks need a server: the running `lab serve`, or one for as long as the monitor runs.
  const server = await callbackServer(lab);
  if (server.started) o.log({ time: iso(now()), env, event: 'server', message: `no lab serve running: serving callbacks at ${server.url} while the monitor runs` });
  o.log({ time: iso(now()), env, event: 'start', intervalMs: o.intervalMs, policy: o.policy, dryRun: o.dryRun });
  try {
    while (!o.signal.aborted) {
      if (reload) {
        reload = false;
        try {
          const next = await loadLab(labDir);
          environment(next, env);
          lab = next;
          o.log({ time: iso(now()), env, event: 'config', message: `applied ${lab.paths.config}` });
        } catch (e) {
          o.log({ time: iso(now()), env, event: 'config-error', message: messageOf(e), kept: 'the last good config' });
        }
      }
      try {
        await cycle(lab, inventory, env, o, now);
      } catch (e) {
        if (o.signal.aborted) break;
        o.log({ time: iso(now()), env, event: 'error', message: messageOf(e) });
      }
      if (o.signal.aborted) break;
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          o.signal.removeEventListener('abort', done);
          wake = undefined;
          resolve();
        };
        const timer = setTimeout(done, o.intervalMs);
        wake = done;
        o.signal.addEventListener('abort', done, { once: true });
      });
    }
  } finally {
    await watcher.close();
    await server.started?.close();
    o.log({ time: iso(now()), env, event: 'stop' });
  }
}

async function cycle(lab: Lab, inventory: Inventory, env: string, o: MonitorOptions, now: () => number): Promise<void> {
  const provider = providerFor(lab);
  const c: EnvContext = { lab, inventory, provider, signal: o.signal, say: (who, what) => o.log({ time: iso(now()), env, event: 'progress', host: who, message: what }) };
  const groups = environment(lab, env).groups;
  const slots = lab.hosts.filter((h) => h.env === env);
  const vms = new Map(await Promise.all(slots.map(async (h) => [h.name, (await provider.info(h.name)).state] as const)));

  const saved = (await inventory.read()).monitors?.[env];
  const rec: MonitorRecord = saved ?? { env, members: slots.filter((h) => vms.get(h.name) === 'running').map((h) => h.name), started: {}, groups: {} };
  const members = new Set(rec.members);
  // Reconcile with the real VMs: one running that is not a member (started by hand, by start-all) is capacity too.
  for (const h of slots) {
    if (vms.get(h.name) === 'running' && !members.has(h.name)) {
      members.add(h.name);
      o.log({ time: iso(now()), env, event: 'adopt', host: h.name, reason: 'its VM runs' });
    }
  }
  // Hosts no longer declared (a group shrank in environments.ts) are not the monitor's any more.
  for (const m of [...members]) if (!slots.some((h) => h.name === m)) members.delete(m);

  await filterHosts(inventory);
  const records = (await inventory.read()).hosts;
  const stateOf = (h: DeclaredHost): HostObservation['state'] => {
    if (!members.has(h.name)) return 'off';
    if (vms.get(h.name) !== 'running') return 'lost';
    const r = records[h.name];
    const since = rec.started[h.name] ?? '';
    if (r?.state === 'up' && r.lastCallback && r.lastCallback >= since) return 'live';
    return since && now() - Date.parse(since) > o.bootDeadlineMs ? 'lost' : 'booting';
  };
  const states = new Map(slots.map((h) => [h.name, stateOf(h)]));
  const live = slots.filter((h) => states.get(h.name) === 'live');

  // New live hosts get their service (and the balancer learns of them) before they are measured.
  const liveNames = live.map((h) => h.name);
  const previous = saved?.live ?? [];
  if (!o.dryRun && (liveNames.length !== previous.length || liveNames.some((n) => !previous.includes(n)))) {
    await settleServices(c, live, o.timeouts);
  }
  const figures = await measure(lab, inventory, live, o.timeouts);

  const decisions: Decision[] = [];
  for (const g of groups) {
    const key = `${env}/${g.role}`;
    const hosts = slots.filter((h) => h.role === g.role);
    const obs: HostObservation[] = hosts.map((h) => {
      const f: Figures = figures.get(h.name) ?? {};
      return { name: h.name, index: h.index, state: states.get(h.name)!, load: f.load, healthy: f.healthy };
    });
    const min = groupSize(g, 'min');
    const max = groupSize(g, 'all');
    const r = decide({ group: key, min, max, hosts: obs }, rec.groups[key] ?? emptyGroupState(), o.policy, now());
    rec.groups[key] = r.state;
    for (const d of r.decisions) {
      decisions.push(d);
      const hostFigures = obs.filter((h) => h.state !== 'off').map((h) => ({ name: h.name, state: h.state, ...figures.get(h.name) }));
      o.log({ time: iso(now()), env, event: 'decision', ...d, hosts: hostFigures, dryRun: o.dryRun || undefined });
    }
  }

  if (!o.dryRun) {
    let shrank = false;
    for (const d of decisions) {
      if (d.action === 'hold' || !d.host) continue;
      try {
        if (d.action === 'scale-down') {
          members.delete(d.host);
          delete rec.started[d.host];
          await provider.stop(d.host, 30_000);
          await inventory.update((data) => {
            const h = data.hosts[d.host!];
            if (h) h.state = 'down';
          });
          shrank = true;
        } else {
          // scale-up and replace: a fresh boot (a lost VM that is gone is cloned again).
          members.add(d.host);
          const vm = await provider.info(d.host);
          if (vm.state === 'running' || vm.state === 'paused' || vm.state === 'unknown') await provider.stop(d.host, 5_000);
          if (vm.state === 'missing') await createVm(c, slots.find((h) => h.name === d.host)!);
          rec.started[d.host] = iso(now());
          await provider.start(d.host, { boot: { kind: 'disk' } });
        }
        o.log({ time: iso(now()), env, event: 'acted', action: d.action, host: d.host });
      } catch (e) {
        o.log({ time: iso(now()), env, event: 'error', action: d.action, host: d.host, message: messageOf(e) });
      }
    }
    // The balancer stops sending to a host as soon as it is gone, not at the next cycle.
    if (shrank) await reconfigure(c, live.filter((h) => members.has(h.name)), o.timeouts);
  }

  const liveAfter = o.dryRun ? previous : live.filter((h) => members.has(h.name)).map((h) => h.name);
  const next: MonitorRecord = { ...rec, members: [...members].sort(), lastCycle: iso(now()), live: liveAfter };
  await inventory.update((data) => {
    data.monitors = { ...data.monitors, [env]: next };
  });
}

