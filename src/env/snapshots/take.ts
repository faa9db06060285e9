import type { EnvContext } from '../hosts.js';
import type { VmSnapshots, VmInfo } from '../../providers/types.js';
import { LabError, UsageError, messageOf } from '../../errors.js';
import { mapBounded } from '../../util/pool.js';
import { envHosts } from '../plan.js';
import { checkSnapshotName, readSnapshot, snapshotExists, tagOf, writeSnapshot, type EnvSnapshot, type SnapshotHost } from './store.js';
import { withHold } from './hold.js';

export function snapshotsOf(c: EnvContext): VmSnapshots {
  if (!c.provider.snapshots) throw new UsageError(`provider ${c.provider.name} cannot take snapshots yet`);
  return c.provider.snapshots;
}

/**
 * `lab env snapshot <env> <name>`: every running VM of the environment
 * paused, then each captured with its memory (stopped ones by their disk),
 * then all resumed, so balancer and workers are caught at one moment; beside
 * them, what the inventory knew of each host at that moment.
 */
export async function takeSnapshot(c: EnvContext, env: string, name: string, o: { parallel: number }): Promise<EnvSnapshot> {
  checkSnapshotName(name);
  const snaps = snapshotsOf(c);
  const paths = c.lab.paths;
  if (snapshotExists(paths, env, name)) {
    const old = readSnapshot(paths, env, name);
    throw new UsageError(`environment ${env} has a snapshot "${name}" already (taken ${old.taken})`, `remove it first with \`lab env snapshot --rm ${env} ${name}\`, or choose another name`);
  }
  return withHold(paths, env, 'snapshot', name, async () => {
    const hosts = envHosts(c.lab, env);
    const infos: VmInfo[] = await Promise.all(hosts.map((h) => c.provider.info(h.name)));
    const odd = infos.filter((i) => !['running', 'paused', 'stopped', 'missing'].includes(i.state));
    if (odd.length) throw new LabError(`cannot capture environment ${env}: ${odd.map((i) => `${i.name}'s VM is ${i.state}${i.hypervisor ? ` (hypervisor ${i.hypervisor})` : ''}`).join(', ')}`);
    const present = infos.filter((i) => i.state !== 'missing');
    if (present.length === 0) throw new UsageError(`environment ${env} has no VMs to capture`, `start it first with \`lab env start-all ${env}\``);
    const tag = tagOf(name);
    const paused: string[] = [];
    const taken: string[] = [];
    try {
      // All held still before any is captured: what one VM's memory shows of another is true of both.
      await Promise.all(
        present
          .filter((i) => i.state === 'running')
          .map(async (i) => {
            await snaps.pause(i.name);
            paused.push(i.name);
          }),
      );
      const at = new Date().toISOString();
      const data = await c.inventory.read();
      const held: Record<string, SnapshotHost> = {};
      await mapBounded(present, o.parallel, async (i) => {
        // A tag left by a take that was interrupted before its file was written.
        if ((await snaps.list(i.name)).includes(tag)) await snaps.remove(i.name, tag);
        const r = await snaps.take(i.name, tag);
        taken.push(i.name);
        held[i.name] = { vm: r.memory ? 'running' : 'stopped', record: data.hosts[i.name], lease: data.leases[i.name] };
        c.say(i.name, r.memory ? 'captured running: memory and disk' : 'captured stopped: its disk');
      });
      const snap: EnvSnapshot = {
        version: 1,
        env,
        name,
        tag,
        taken: at,
        provider: c.provider.name,
        hosts: Object.fromEntries(present.map((i) => [i.name, held[i.name]!])),
        absent: infos.filter((i) => i.state === 'missing').map((i) => i.name),
        macSeed: data.macSeed,
      };
      writeSnapshot(paths, snap);
      return snap;
    } catch (e) {
      // Nothing half-taken is kept: a snapshot is all of the environment or none of it.
      for (const n of taken) await snaps.remove(n, tag).catch((err) => c.say(n, `could not remove the partial snapshot: ${messageOf(err)}`));
      throw e;
    } finally {
      await Promise.all(paused.map((n) => snaps.resume(n).catch((err) => c.say(n, `could not resume it: ${messageOf(err)}`))));
    }
  });
}
