import type { EnvContext } from '../hosts.js';
import { LabError, messageOf } from '../../errors.js';
import { listSnapshots, readSnapshot, removeSnapshotFile, tagOf } from './store.js';
import { withHold } from './hold.js';
import { snapshotsOf } from './take.js';
import { envHosts } from '../plan.js';

export interface SnapshotRow {
  name: string;
  taken?: string;
  /** Hosts captured running, and stopped. */
  running: string[];
  stopped: string[];
  /** service@version of each host with one, as the inventory knew them. */
  versions: string[];
  /** Why it cannot be restored (a VM gone or rebuilt, a damaged file); absent when it can. */
  broken?: string;
}

/** `lab env snapshots <env>`: each snapshot, and whether every VM it names still holds it. */
export async function snapshotRows(c: EnvContext, env: string): Promise<SnapshotRow[]> {
  envHosts(c.lab, env);
  const snaps = snapshotsOf(c);
  const tags = new Map<string, Promise<string[]>>();
  const tagsOf = (n: string) => {
    if (!tags.has(n)) tags.set(n, c.provider.info(n).then((i) => (i.state === 'missing' ? [] : snaps.list(n))).catch(() => []));
    return tags.get(n)!;
  };
  return Promise.all(
    listSnapshots(c.lab.paths, env).map(async (s): Promise<SnapshotRow> => {
      if ('error' in s) return { name: s.name, running: [], stopped: [], versions: [], broken: s.error };
      const hosts = Object.entries(s.hosts);
      const lost: string[] = [];
      for (const [n] of hosts) if (!(await tagsOf(n)).includes(s.tag)) lost.push(n);
      return {
        name: s.name,
        taken: s.taken,
        running: hosts.filter(([, h]) => h.vm === 'running').map(([n]) => n),
        stopped: hosts.filter(([, h]) => h.vm === 'stopped').map(([n]) => n),
        versions: hosts.flatMap(([n, h]) => (h.record?.serviceVersion ? [`${n}=${h.record.serviceVersion}`] : [])),
        broken: lost.length ? `not held by the VM of ${lost.join(', ')} (rebuilt or deleted since)` : undefined,
      };
    }),
  );
}

/** `lab env snapshot --rm <env> <name>`: the tag off every VM of the environment that holds it, then the file. */
export async function removeSnapshot(c: EnvContext, env: string, name: string): Promise<string[]> {
  const snaps = snapshotsOf(c);
  // A damaged file is removed too: its tag is known from its name.
  let tag = tagOf(name);
  try {
    tag = readSnapshot(c.lab.paths, env, name).tag;
  } catch (e) {
    if (!listSnapshots(c.lab.paths, env).some((s) => s.name === name)) throw e;
  }
  return withHold(c.lab.paths, env, 'remove', name, async () => {
    const removed: string[] = [];
    for (const h of envHosts(c.lab, env)) {
      if ((await c.provider.info(h.name)).state === 'missing') continue;
      try {
        if (!(await snaps.list(h.name)).includes(tag)) continue;
        await snaps.remove(h.name, tag);
        removed.push(h.name);
      } catch (e) {
        throw new LabError(`${h.name}: removing its snapshot ${tag}: ${messageOf(e)}; the snapshot's file is kept, run --rm again`);
      }
    }
    removeSnapshotFile(c.lab.paths, env, name);
    return removed;
  });
}
