import type { Lab } from '../config/load.js';
import type { Inventory } from '../inventory/store.js';
import { sshTarget } from '../hosts/sshconfig.js';
import { ensureSecrets } from '../project/secrets.js';
import { LabError } from '../errors.js';
import { mapBounded } from '../util/pool.js';
import { operationContext, OperationFailed } from './context.js';
import { Session, SessionError } from './session.js';
import { operationOf, type Service } from './services.js';
import { selectTargets, clusterHosts, type Selection, type Target } from './targets.js';
import type { ClusterFacts, HostFacts } from './types.js';

/**
 * The fan-out: one operation of one service on every selected host, in
 * parallel within a bound, one SSH connection per host. A host that fails
 * never stops the others; each result keeps its host's output.
 */

/**
 * ok: the operation finished. failed: it ran and failed (a command, a check).
 * unreachable: no SSH connection. refused: the host's key is not the recorded
 * one, or it refused the lab's key. timeout: a command ran over its time.
 * skipped: not run (down at the last sweep, or never called back).
 */
export type Outcome = 'ok' | 'failed' | 'unreachable' | 'refused' | 'timeout' | 'skipped';

export interface HostResult {
  host: string;
  env: string;
  role: string;
  version: string;
  outcome: Outcome;
  ms: number;
  /** What the operation returned (ok), or why it did not finish. */
  detail?: string;
  output: string[];
}

export interface OperationRun {
  lab: Lab;
  inventory: Inventory;
  service: Service;
  operation: string;
  selection: Selection;
  parallel: number;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
  /** Told when a host starts and finishes, for progress. */
  onStart?: (host: string) => void;
  onResult?: (result: HostResult) => void;
}

export const CLUSTER_FILE = '/etc/lab/cluster.json';

export async function runOperation(o: OperationRun): Promise<HostResult[]> {
  const op = operationOf(o.service, o.operation);
  const { privateKey } = ensureSecrets(o.lab.paths, o.lab.config.name);
  const records = (await o.inventory.read()).hosts;
  const targets = selectTargets(o.lab, o.service, o.operation, records, o.selection);
  if (targets.length === 0) {
    const who = o.selection.hosts ? o.selection.hosts.join(', ') : `role ${o.selection.role ?? o.service.definition.role}${o.selection.env ? ` in ${o.selection.env}` : ''}`;
    throw new LabError(`no host of ${who} has called back yet: nothing to run ${o.service.name} ${o.operation} on`, {
      hint: 'build and boot the hosts first (lab image clone / lab image start), then see `lab hosts list`',
    });
  }
  const live = clusterHosts(o.lab, records);
  const generated = new Date().toISOString();

  const one = async (t: Target): Promise<HostResult> => {
    const base = { host: t.host.name, env: t.host.env, role: t.host.role, version: t.version };
    if (t.skip) return { ...base, outcome: 'skipped', ms: 0, detail: t.skip, output: [] };
    o.onStart?.(t.host.name);
    const started = Date.now();
    const output: string[] = [];
    const record = t.record!;
    const reach = sshTarget(record)!;
    let session: Session | undefined;
    const result = (outcome: Outcome, detail?: string): HostResult => ({ ...base, outcome, ms: Date.now() - started, detail, output });
    try {
      session = await Session.open({
        host: t.host.name,
        address: reach.address,
        port: reach.port,
        hostKey: record.hostKey!,
        privateKey,
        connectTimeoutMs: o.connectTimeoutMs,
      });
      const host: HostFacts = {
        name: t.host.name,
        env: t.host.env,
        role: t.host.role,
        image: t.host.image,
        distro: o.lab.config.images[t.host.image]!.distro,
        address: record.ip!,
        mac: record.mac,
      };
      const cluster: ClusterFacts = { generated, self: host.name, env: host.env, hosts: live };
      const ctx = operationContext({
        lab: o.lab,
        service: o.service,
        operation: o.operation,
        host,
        version: t.version,
        cluster,
        session,
        httpThroughSsh: record.reach !== undefined,
        commandTimeoutMs: o.commandTimeoutMs,
        output,
      });
      // A deploy tells every host who its peers are before the service's own steps run.
      if (o.operation === 'deploy') await ctx.write(CLUSTER_FILE, `${JSON.stringify(cluster, null, 2)}\n`, { mode: 0o644 });
      const note = await op(ctx);
      if (o.operation === 'deploy') {
        await o.inventory.update((d) => {
          const h = d.hosts[t.host.name];
          if (h) h.serviceVersion = t.version;
        });
      }
      return result('ok', typeof note === 'string' ? note : undefined);
    } catch (e) {
      if (e instanceof OperationFailed) return result('failed', e.message);
      if (e instanceof SessionError) {
        const outcome: Outcome =
          e.kind === 'hostkey' || e.kind === 'auth' ? 'refused' : e.kind === 'command-timeout' ? 'timeout' : session ? 'failed' : 'unreachable';
        return result(outcome, e.message);
      }
      if (e instanceof LabError) return result('failed', e.message);
      // The service's own code threw: its author needs the place.
      const where = e instanceof Error ? (e.stack ?? '').split('\n').find((l) => l.includes(o.service.dir))?.trim() : undefined;
      return result('failed', `${o.service.name}/service.ts ${o.operation} threw: ${e instanceof Error ? e.message : String(e)}${where ? ` (${where})` : ''}`);
    } finally {
      session?.close();
    }
  };

  return mapBounded(targets, o.parallel, async (t) => {
    const r = await one(t);
    o.onResult?.(r);
    return r;
  });
}

/** Hosts that count as failed for the exit code (skipped ones do not). */
export function failedResults(results: HostResult[]): HostResult[] {
  return results.filter((r) => r.outcome !== 'ok' && r.outcome !== 'skipped');
}
