import type { DeclaredHost } from '../config/load.js';
import { filterHosts, isLive } from '../hosts/manager.js';
import { callbackServer } from '../server/serve.js';
import { mapBounded } from '../util/pool.js';
import { bringUp, ensureImages, type EnvContext, type HostUp } from './hosts.js';
import { drain, settleServices, type ServiceOutcome, type ServiceTimeouts } from './services.js';
import { wantedHosts, envHosts, type StartMode } from './plan.js';
import { UsageError } from '../errors.js';

export interface StartOptions extends ServiceTimeouts {
  /** VMs brought up at once. */
  hostParallel: number;
  /** How long a booting host may take to call back. */
  bootDeadlineMs: number;
}

export interface StartReport {
  hosts: HostUp[];
  services: ServiceOutcome;
  /** Set when no `lab serve` ran and this command served the callbacks itself. */
  servedHere: boolean;
}

/**
 * Callbacks need a server: the running `lab serve`, or one started for the
 * length of this command (as `lab image build` does).
 */
async function withServer<T>(c: EnvContext, fn: (servedHere: boolean) => Promise<T>): Promise<T> {
  const server = await callbackServer(c.lab);
  if (server.started) c.say('server', `no lab serve running: serving callbacks at ${server.url} for this command`);
  try {
    return await fn(server.started !== undefined);
  } finally {
    await server.started?.close();
  }
}

async function bringUpAll(c: EnvContext, hosts: DeclaredHost[], o: StartOptions, restart: boolean, servedHere: boolean): Promise<HostUp[]> {
  await ensureImages(c, hosts);
  return mapBounded(hosts, o.hostParallel, (h) => bringUp(c, h, { restart, deadlineMs: o.bootDeadlineMs, servedHere }));
}

/** Hosts of the environment that called back and answer a probe now. */
export async function liveHosts(c: EnvContext, env: string): Promise<DeclaredHost[]> {
  await filterHosts(c.inventory);
  const records = (await c.inventory.read()).hosts;
  return envHosts(c.lab, env).filter((h) => isLive(records[h.name]));
}

/** `lab env start-all` / `start-min`: what is missing, and only that. */
export async function startEnv(c: EnvContext, env: string, mode: StartMode, o: StartOptions): Promise<StartReport> {
  const hosts = wantedHosts(c.lab, env, mode);
  return withServer(c, async (servedHere) => {
    const up = await bringUpAll(c, hosts, o, false, servedHere);
    const live = await liveHosts(c, env);
    const services = await settleServices(c, live, o);
    return { hosts: up, services, servedHere };
  });
}

/** `lab env start-worker`: (re)start one host and its service; its peers are told. */
export async function startWorker(c: EnvContext, env: string, name: string, o: StartOptions): Promise<StartReport> {
  const host = envHosts(c.lab, env).find((h) => h.name === name);
  if (!host) {
    throw new UsageError(`no host "${name}" in environment ${env}; its hosts: ${envHosts(c.lab, env).map((h) => h.name).join(', ')}`);
  }
  return withServer(c, async (servedHere) => {
    // A running host leaves its peers' view before it goes down, so the balancer sends it nothing while it restarts.
    const before = await liveHosts(c, env);
    if (before.some((h) => h.name === name)) await drain(c, [name], before, o);
    const up = await bringUpAll(c, [host], o, true, servedHere);
    const live = await liveHosts(c, env);
    const services = await settleServices(c, live.filter((h) => h.name === name || h.service !== host.service), o);
    return { hosts: up, services, servedHere };
  });
}
