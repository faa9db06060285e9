import { heldBy, holdText } from '../env/snapshots/hold.js';
import { groupSize, loadLab, type DeclaredHost, type Lab } from '../config/load.js';
import { Inventory } from '../inventory/store.js';
import { keyed, type MonitorRecord } from '../inventory/types.js';
import { filterHosts, isLive } from '../hosts/manager.js';
import { providerFor } from '../providers/index.js';
import { callbackServer } from '../server/serve.js';
import { messageOf } from '../errors.js';
import { createVm, type EnvContext } from '../env/hosts.js';
import { settleServices, drain, type ServiceTimeouts } from '../env/services.js';
import type { Provider, VmState } from '../providers/types.js';
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
  const { watch } = await import('chokidar');
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

type Log = (entry: Record<string, unknown>) => void;

async function cycle(lab: Lab, inventory: Inventory, env: string, o: MonitorOptions, now: () => number): Promise<void> {
  const provider = await providerFor(lab);
  try {
    await cycleWith(provider, lab, inventory, env, o, now);
  } finally {
    // Its connections (libvirt's virsh shells) are the cycle's: none is kept across a hypervisor's restart.
    provider.close?.();
  }
}

async function cycleWith(provider: Provider, lab: Lab, inventory: Inventory, env: string, o: MonitorOptions, now: () => number): Promise<void> {
  const log: Log = (entry) => o.log({ time: iso(now()), env, ...entry });
  // A snapshot or restore runs: what the monitor would see of it is half-done, and what it would do would fight it.
  const hold = heldBy(lab.paths, env);
  if (hold) return log({ event: 'held', message: `${holdText(hold)} (pid ${hold.pid}): this cycle is skipped` });
  const c: EnvContext = { lab, inventory, provider, signal: o.signal, say: (who, what) => log({ event: 'progress', host: who, message: what }) };
  const groups = environment(lab, env).groups;
  const slots = lab.hosts.filter((h) => h.env === env);
  const infos = await Promise.all(slots.map((h) => provider.info(h.name)));
  const vms = new Map(infos.map((i) => [i.name, i.state] as const));
  for (const i of infos) if (i.state === 'unreachable') log({ event: 'unreachable', host: i.name, hypervisor: i.hypervisor, message: `its hypervisor ${i.hypervisor} does not answer` });
  // VMs replaced elsewhere while their hypervisor was away are removed there once it answers: never two of one name.
  if (!o.dryRun) for (const line of (await provider.reconcile?.()) ?? []) log({ event: 'reconcile', message: line });

  const saved = (await inventory.read()).monitors?.[env];
  // At its first cycle the members are what runs, and what ran on a hypervisor that stopped answering (lost, not gone by choice).
  const ran = (h: DeclaredHost) => vms.get(h.name) === 'running' || vms.get(h.name) === 'unreachable';
  const rec: MonitorRecord = saved ?? { env, members: slots.filter(ran).map((h) => h.name), started: {}, groups: {} };
  const members = reconcileMembers(rec, slots, vms, log);

  await filterHosts(inventory);
  const records = (await inventory.read()).hosts;
  const stateOf = (h: DeclaredHost): HostObservation['state'] => {
    if (!members.has(h.name)) return 'off';
    if (vms.get(h.name) !== 'running') return 'lost';
    const r = records[h.name];
    const since = rec.started[h.name] ?? '';
    if (isLive(r) && r.lastCallback! >= since) return 'live';
    return since && now() - Date.parse(since) > o.bootDeadlineMs ? 'lost' : 'booting';
  };
  const states = new Map(slots.map((h) => [h.name, stateOf(h)]));
  const live = slots.filter((h) => states.get(h.name) === 'live');

  // New live hosts get their service (and the balancer learns of them, or of hosts gone) before they are measured.
  const liveNames = live.map((h) => h.name);
  const previous = saved?.live ?? [];
  if (!o.dryRun && (liveNames.length !== previous.length || liveNames.some((n) => !previous.includes(n)))) {
    await settleServices(c, live, o.timeouts);
  }
  let figures = await measure(lab, inventory, live, o.timeouts);
  if (!o.dryRun) figures = await heal(c, live, figures, o.timeouts, log);

  const decisions: Decision[] = [];
  for (const g of groups) {
    const key = `${env}/${g.role}`;
    const obs: HostObservation[] = slots
      .filter((h) => h.role === g.role)
      .map((h) => {
        const f: Figures = figures.get(h.name) ?? {};
        return { name: h.name, index: h.index, state: states.get(h.name)!, load: f.load, healthy: f.healthy };
      });
    const r = decide({ group: key, min: groupSize(g, 'min'), max: groupSize(g, 'all'), hosts: obs }, rec.groups[key] ?? emptyGroupState(), o.policy, now());
    rec.groups[key] = r.state;
    for (const d of r.decisions) {
      decisions.push(d);
      const hostFigures = obs.filter((h) => h.state !== 'off').map((h) => ({ name: h.name, state: h.state, ...figures.get(h.name) }));
      log({ event: 'decision', ...d, hosts: hostFigures, dryRun: o.dryRun || undefined });
    }
  }

  const save = async (liveNow: string[]) => {
    const next: MonitorRecord = { ...rec, members: [...members].sort(), lastCycle: iso(now()), live: liveNow };
    await inventory.update((data) => {
      data.monitors = keyed({ ...data.monitors, [env]: next });
    });
  };
  if (o.dryRun) return save(previous);
  // The decisions are kept before they are acted on: a monitor killed mid-act resumes from them.
  for (const d of decisions) {
    if (d.host && (d.action === 'scale-up' || d.action === 'replace')) {
      members.add(d.host);
      rec.started[d.host] = iso(now());
    }
  }
  await save(previous);
  // The balancer stops sending to a host before it goes, not at the next cycle.
  const leave = (host: string) => drain(c, [host], live.filter((h) => members.has(h.name)), o.timeouts);
  await act(c, decisions, { members, rec, slots, now, log, drain: leave });
  // Placing a replacement may have reached a hypervisor that owed removals: said too.
  for (const line of (await provider.reconcile?.()) ?? []) log({ event: 'reconcile', message: line });
  await save(live.filter((h) => members.has(h.name)).map((h) => h.name));
}

/** Running VMs that are not members (started by hand, by start-all) are capacity too; undeclared hosts are not the monitor's. */
function reconcileMembers(rec: MonitorRecord, slots: DeclaredHost[], vms: Map<string, VmState>, log: Log): Set<string> {
  const members = new Set(rec.members);
  for (const h of slots) {
    if (vms.get(h.name) === 'running' && !members.has(h.name)) {
      members.add(h.name);
      log({ event: 'adopt', host: h.name, reason: 'its VM runs' });
    }
  }
  for (const m of [...members]) if (!slots.some((h) => h.name === m)) members.delete(m);
  return members;
}

/**
 * A live host failing its health check first gets its service brought back in
 * place (the settle step: deploy what the host lacks, start, test): a service
 * stopped by hand, or a release lost with a crash, is mended without a reboot.
 * Its health is then checked again; only a host still failing counts towards
 * its replacement.
 */
async function heal(c: EnvContext, live: DeclaredHost[], figures: Map<string, Figures>, t: ServiceTimeouts, log: Log): Promise<Map<string, Figures>> {
  const failing = live.filter((h) => h.service && figures.get(h.name)?.healthy === false);
  if (failing.length === 0) return figures;
  for (const h of failing) log({ event: 'heal', host: h.name, reason: `failed its health check: ${figures.get(h.name)?.error ?? 'no answer'}` });
  await settleServices(c, failing, t);
  const again = await measure(c.lab, c.inventory, failing, t);
  const merged = new Map(figures);
  for (const h of failing) {
    const f = again.get(h.name) ?? {};
    merged.set(h.name, { ...figures.get(h.name), ...f });
    log({ event: f.healthy ? 'healed' : 'heal-failed', host: h.name, message: f.healthy ? 'passes its health check again' : (f.error ?? 'still failing') });
  }
  return merged;
}

interface ActState {
  members: Set<string>;
  rec: MonitorRecord;
  slots: DeclaredHost[];
  now: () => number;
  log: Log;
  /** Take a host out of its peers' view (the balancer) while it still serves. */
  drain: (host: string) => Promise<unknown>;
}

/** Carry out the decisions. */
async function act(c: EnvContext, decisions: Decision[], s: ActState): Promise<void> {
  for (const d of decisions) {
    if (!d.host || (d.action !== 'scale-up' && d.action !== 'scale-down' && d.action !== 'replace')) continue;
    try {
      if (d.action === 'scale-down') {
        s.members.delete(d.host);
        delete s.rec.started[d.host];
        await s.drain(d.host);
        await c.provider.stop(d.host, 30_000);
      } else {
        // scale-up and replace: a fresh boot (a lost VM that is gone is cloned again).
        s.members.add(d.host);
        let vm = await c.provider.info(d.host);
        if (vm.state === 'unreachable') {
          // Gone with its hypervisor: made anew on another (the old one is removed when that hypervisor answers again).
          await c.provider.delete(d.host);
          vm = await c.provider.info(d.host);
        }
        if (vm.state === 'running' || vm.state === 'paused' || vm.state === 'unknown') await c.provider.stop(d.host, 5_000);
        if (vm.state === 'missing') await createVm(c, s.slots.find((h) => h.name === d.host)!);
        s.rec.started[d.host] = iso(s.now());
        await c.provider.start(d.host, { boot: { kind: 'disk' } });
      }
      s.log({ event: 'acted', action: d.action, host: d.host });
    } catch (e) {
      s.log({ event: 'error', action: d.action, host: d.host, message: messageOf(e) });
    }
  }
}
