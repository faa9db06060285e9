import type { DeclaredHost } from '../config/load.js';
import { machineFor } from '../inventory/boots.js';
import { messageOf } from '../errors.js';
import { waitUntil } from '../util/wait.js';
import type { EnvContext } from './hosts.js';
import { drain, reconfigure } from './services.js';
import { liveHosts, startWorker, type StartOptions } from './start.js';

export interface Moved {
  host: string;
  from: string;
  /** migrated: live, the guest never stopped; recreated: taken out of the balancer, made anew elsewhere, its service brought back; failed: see detail. */
  how: 'migrated' | 'recreated' | 'failed';
  to?: string;
  detail?: string;
}

/**
 * Move these VMs off their hypervisor with requests through the balancer
 * still answered: a serving host leaves the balancer, moves by live
 * migration where both ends allow it and rejoins once it answers; else it
 * is made anew on another hypervisor, gets its service, and the balancer
 * takes it back. A stopped VM's disk is copied over (images too).
 */
export async function evacuate(c: EnvContext, hosts: DeclaredHost[], o: StartOptions): Promise<Moved[]> {
  const out: Moved[] = [];
  for (const host of hosts) {
    const vm = await c.provider.info(host.name);
    const from = vm.hypervisor ?? '?';
    // environments.ts is the truth: a host pinned here is not moved behind the person's back.
    if (host.hypervisor === from) {
      out.push({ host: host.name, from, how: 'failed', detail: `left on ${from}: environments.ts pins its group (${host.env}, role ${host.role}) to hypervisor ${from}; pin it elsewhere to move it` });
      continue;
    }
    let why: string;
    const running = vm.state === 'running';
    const serving = running && host.kind !== 'image';
    // Out of the balancer while it moves: the guest pauses at the switch-over, and a request the balancer
    // sent it then would time out and bench it (nginx: max_fails=1, fail_timeout=10s) after the move.
    if (serving) await drain(c, [host.name], await liveHosts(c, host.env), o);
    try {
      c.say(host.name, running ? `migrating live from ${from}` : `moving its disk from ${from}`);
      const to = await c.provider.migrate!(host.name);
      await recordPlace(c, host, to);
      const back = serving ? await rejoin(c, host, o) : true;
      out.push({ host: host.name, from, how: 'migrated', to, ...(back ? {} : { detail: `not answering on ${to} after the move: left out of the balancer` }) });
      continue;
    } catch (e) {
      why = messageOf(e);
    }
    if (vm.state !== 'running' || host.kind === 'image') {
      out.push({ host: host.name, from, how: 'failed', detail: why });
      continue;
    }
    c.say(host.name, `live migration failed (${why}): recreating it elsewhere`);
    try {
      await c.provider.delete(host.name);
      const r = await startWorker(c, host.env, host.name, o);
      const up = r.hosts.find((h) => h.host === host.name);
      const svc = r.services.get(host.name);
      const to = (await c.provider.info(host.name)).hypervisor;
      if (to) await recordPlace(c, host, to);
      if (up?.outcome === 'failed' || (svc && svc.outcome !== 'ok')) out.push({ host: host.name, from, to, how: 'failed', detail: up?.detail ?? svc?.detail });
      else out.push({ host: host.name, from, to, how: 'recreated', detail: `live migration: ${why}` });
    } catch (e) {
      out.push({ host: host.name, from, how: 'failed', detail: messageOf(e) });
    }
  }
  return out;
}

/** Back in the balancer once it answers where it now runs (the guest resumes within a second or so of the switch-over). */
async function rejoin(c: EnvContext, host: DeclaredHost, o: StartOptions, waitMs = 15_000): Promise<boolean> {
  const live = await waitUntil(waitMs, async () => {
    const now = await liveHosts(c, host.env);
    return now.some((h) => h.name === host.name) ? now : undefined;
  }, { everyMs: 1000 });
  if (!live) return false;
  await reconfigure(c, live, o);
  c.say(host.name, 'back in the balancer');
  return true;
}

async function recordPlace(c: EnvContext, host: DeclaredHost, to: string): Promise<void> {
  await c.inventory.update((d) => {
    machineFor(d, host.name, new Date().toISOString(), host).hypervisor = to;
  });
}
