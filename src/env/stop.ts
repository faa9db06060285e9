import { mapBounded } from '../util/pool.js';
import { messageOf } from '../errors.js';
import type { EnvContext } from './hosts.js';
import { envHosts } from './plan.js';

export interface HostStop {
  host: string;
  outcome: 'graceful' | 'forced' | 'already' | 'failed';
  detail?: string;
}

/**
 * `lab env stop`: every VM of the environment gets the ACPI power button,
 * then a hard power-off after the deadline; they are marked down in the
 * inventory so deploys skip them.
 */
export async function stopEnv(c: EnvContext, env: string, o: { parallel: number; deadlineMs: number }): Promise<HostStop[]> {
  const hosts = envHosts(c.lab, env);
  const results = await mapBounded(hosts, o.parallel, async (h): Promise<HostStop> => {
    try {
      if ((await c.provider.info(h.name)).state === 'missing') return { host: h.name, outcome: 'already', detail: 'no VM' };
      const how = await c.provider.stop(h.name, o.deadlineMs);
      if (how !== 'already') c.say(h.name, how === 'graceful' ? 'powered off' : `forced off after ${o.deadlineMs / 1000} s`);
      return { host: h.name, outcome: how };
    } catch (e) {
      return { host: h.name, outcome: 'failed', detail: messageOf(e).split('\n')[0] };
    }
  });
  const stopped = new Set(results.filter((r) => r.outcome !== 'failed').map((r) => r.host));
  const now = new Date().toISOString();
  await c.inventory.update((d) => {
    for (const name of stopped) {
      const h = d.hosts[name];
      if (h && h.state !== 'down') {
        h.state = 'down';
        h.lastProbe = now;
      }
    }
  });
  return results;
}
