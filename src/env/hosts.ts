import { lastLines } from '../providers/console.js';
import { followConsole } from '../providers/follow.js';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DeclaredHost, Lab } from '../config/load.js';
import type { Inventory } from '../inventory/store.js';
import type { Provider } from '../providers/types.js';
import { buildImage, installHost } from '../hostbuilder/build.js';
import { cloneHost } from '../hostbuilder/clone.js';
import { imageDistro } from '../distros/index.js';
import type { StepEvents } from '../hostbuilder/steps.js';
import { messageOf } from '../errors.js';
import { sweep, type SweepOptions } from '../hosts/probe.js';

const PROBE: SweepOptions = { timeoutMs: 1000, deadlineMs: 3000, concurrency: 1 };

/** What the env manager works with. */
export interface EnvContext {
  lab: Lab;
  inventory: Inventory;
  provider: Provider;
  /** A line of progress about one host (or image). */
  say: (who: string, what: string) => void;
  /** With --follow: each VM's serial console, line by line, while it installs or boots. */
  console?: (who: string, line: string) => void;
  signal?: AbortSignal;
}

export interface HostUp {
  host: string;
  /** up: called back now; running: was up already, left alone; failed: see detail. */
  outcome: 'up' | 'running' | 'failed';
  detail?: string;
}

const quiet: StepEvents = { start: () => undefined, note: () => undefined, done: () => undefined, undo: () => undefined };

/** Build the images these hosts are cloned from, once each; an installed image is left alone. */
export async function ensureImages(c: EnvContext, hosts: DeclaredHost[]): Promise<void> {
  const images = [...new Set(hosts.filter((h) => imageDistro(c.lab, h.image).hostsAre === 'clones').map((h) => h.image))];
  for (const image of images) {
    const events: StepEvents = { ...quiet, start: (step) => c.say(image, `build: ${step}`) };
    const r = await buildImage(c.lab, c.inventory, c.provider, image, { events, signal: c.signal, console: c.console && ((l) => c.console!(image, l)) });
    c.say(image, r === 'exists' ? 'image installed already' : 'image built');
  }
}

/** Make a host's VM: a linked clone of its image, or its own install from the installer, as its distro has it. */
export async function createVm(c: EnvContext, host: DeclaredHost): Promise<void> {
  if (imageDistro(c.lab, host.image).hostsAre === 'clones') {
    c.say(host.name, `cloning ${host.image}`);
    await cloneHost(c.lab, c.inventory, c.provider, host.image, host.name);
  } else {
    c.say(host.name, `installing from ${host.image}'s installer`);
    await installHost(c.lab, c.inventory, c.provider, host, { events: quiet, signal: c.signal, console: c.console && ((l) => c.console!(host.name, l)) });
  }
}

/**
 * Bring one host to running and called back: clone it (mini) or install it
 * (CentOS) if it has no VM, boot it if stopped, and wait for its callback.
 * A host that runs and called back is left alone unless restart.
 */
export async function bringUp(c: EnvContext, host: DeclaredHost, opts: { restart?: boolean; deadlineMs: number; servedHere?: boolean }): Promise<HostUp> {
  const name = host.name;
  try {
    let vm = await c.provider.info(name);
    if (opts.restart && vm.state === 'running') {
      c.say(name, 'stopping');
      await c.provider.stop(name, 60_000);
      vm = await c.provider.info(name);
    }
    if (vm.state === 'missing') {
      await createVm(c, host);
      vm = await c.provider.info(name);
    }
    const record = (await c.inventory.read()).hosts[name];
    if (vm.state === 'running') {
      // Called back before and answering now (whatever the last sweep said): left alone.
      if (record?.lastCallback && (record.state === 'up' || (await sweep([record], PROBE))[0]?.alive)) return { host: name, outcome: 'running' };
      // Booting already (an earlier run was interrupted): wait for its callback.
      c.say(name, 'booting (started earlier), waiting for its callback');
      return await followed(c, name, () => waitCallback(c, name, record?.lastCallback ?? '', opts));
    }
    const since = new Date().toISOString();
    c.say(name, 'starting');
    return await followed(c, name, async () => {
      await c.provider.start(name, { boot: { kind: 'disk' } });
      return waitCallback(c, name, since, opts);
    });
  } catch (e) {
    const detail = messageOf(e).split('\n')[0];
    c.say(name, `failed: ${detail}`);
    return { host: name, outcome: 'failed', detail };
  }
}

/** Run a boot with its console followed (--follow), from where the console stands now: earlier boots are not shown again. */
async function followed<T>(c: EnvContext, name: string, boot: () => Promise<T>): Promise<T> {
  if (!c.console) return boot();
  const follower = followConsole(c.provider, name, (l) => c.console!(name, l), { from: (await c.provider.console(name)).length });
  try {
    return await boot();
  } finally {
    await follower.stop();
  }
}

async function waitCallback(c: EnvContext, name: string, after: string, { deadlineMs, servedHere }: { deadlineMs: number; servedHere?: boolean }): Promise<HostUp> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const h = (await c.inventory.read()).hosts[name];
    if (h?.lastCallback && h.lastCallback > after) {
      c.say(name, `up at ${h.ip}`);
      return { host: name, outcome: 'up' };
    }
    if (c.signal?.aborted) throw new Error('interrupted');
    if ((await c.provider.info(name)).state !== 'running') {
      const tail = lastLines(await c.provider.console(name), 1);
      throw new Error(`its VM stopped before calling back${tail ? ` (console: ${tail.trim()})` : ''}`);
    }
    if (Date.now() > end) {
      // Served here, the server is there: the guest did not reach it (or did not boot far enough). Else the running lab serve may not be the right one.
      const look = servedHere ? `see its console: ${lastLines(await c.provider.console(name), 1).trim() || 'empty'}` : 'is lab serve running and reachable from the lab network? see lab hosts logged';
      throw new Error(`no boot callback within ${Math.round(deadlineMs / 1000)} s (${look})`);
    }
    await sleep(500);
  }
}
