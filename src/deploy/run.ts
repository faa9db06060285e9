import type { Lab } from '../config/load.js';
import type { HostRecord } from '../inventory/types.js';
import type { Inventory } from '../inventory/store.js';
import { sshTarget } from '../hosts/sshconfig.js';
import { ensureSecrets } from '../project/secrets.js';
import { LabError, UsageError } from '../errors.js';
import { mapBounded } from '../util/pool.js';
import { operationContext, OperationFailed, type HttpRoute } from './context.js';
import { Session, SessionError } from './session.js';
import { operationOf, type Service } from './services.js';
import { markDeployedCommand } from './marker.js';
import { selectTargets, clusterHosts, runsOwn, type Selection, type Target } from './targets.js';
import type { ClusterFacts, FleetOperation, HostFacts, Operation } from './types.js';

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
  operation: string;
  env: string;
  role: string;
  version: string;
  outcome: Outcome;
  ms: number;
  /** What the operation returned (ok), or why it did not finish. */
  detail?: string;
  /** The operation said whether it changed anything on the host (absent: it did not say). */
  changed?: boolean;
  /** What the operation reported for its caller (OperationReport.data). */
  data?: unknown;
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
  /** Run this function instead of the service's operation of that name (the monitor's measurements). */
  op?: Operation;
  /** Send the operation's HTTP requests through the live host of this role in each host's environment. */
  via?: string;
  /** Told when a host starts and finishes, for progress. */
  onStart?: (host: string) => void;
  onResult?: (result: HostResult) => void;
}

export const CLUSTER_FILE = '/etc/lab/cluster.json';

export async function runOperation(o: OperationRun): Promise<HostResult[]> {
  const op = o.op ?? operationOf(o.service, o.operation);
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
  if (o.via !== undefined && !o.lab.hosts.some((h) => h.role === o.via)) {
    throw new UsageError(`--via: no role "${o.via}" in any environment; roles: ${[...new Set(o.lab.hosts.map((h) => h.role))].join(', ')}`);
  }

  const sessions = new SessionPool(records, privateKey, o.connectTimeoutMs);
  if (typeof op !== 'function') {
    if (o.via !== undefined) throw new UsageError(`--via: ${o.service.name} is an Ansible playbook, whose tasks make their own requests`);
    try {
      return await runFleet(o, op, targets, live.map((h) => records[h.name]!), sessions);
    } finally {
      await sessions.closeAll();
    }
  }
  const sessionFor = (name: string) => sessions.for(name);
  const routeTo = async (name: string): Promise<HttpRoute> => {
    const r = records[name];
    if (!r?.ip || !live.some((h) => h.name === name)) throw new OperationFailed(`no live host "${name}" to send a request to`);
    if (!r.reach) return { name, address: r.ip };
    return { name, address: r.reach.address, forward: async (port) => (await sessionFor(name)).forward(port) };
  };
  const factsOf = (name: string): HostFacts => {
    const d = o.lab.hosts.find((h) => h.name === name)!;
    const r = records[name]!;
    return { name, env: d.env, role: d.role, image: d.image, distro: o.lab.config.images[d.image]!.distro, address: r.ip!, mac: r.mac };
  };

  const one = async (t: Target): Promise<HostResult> => {
    const base = { host: t.host.name, operation: o.operation, env: t.host.env, role: t.host.role, version: t.version };
    if (t.skip) return { ...base, outcome: 'skipped', ms: 0, detail: t.skip, output: [] };
    o.onStart?.(t.host.name);
    const started = Date.now();
    const output: string[] = [];
    let connected = false;
    const result = (outcome: Outcome, detail?: string): HostResult => ({ ...base, outcome, ms: Date.now() - started, detail, output });
    try {
      const via = o.via === undefined ? undefined : live.find((h) => h.env === t.host.env && h.role === o.via);
      if (o.via !== undefined && !via) throw new OperationFailed(`--via: no live host of role ${o.via} in environment ${t.host.env}`);
      const session = await sessionFor(t.host.name);
      connected = true;
      const host = factsOf(t.host.name);
      const cluster: ClusterFacts = { generated, self: host.name, env: host.env, hosts: live };
      const ctx = operationContext({
        lab: o.lab,
        service: o.service,
        operation: o.operation,
        host,
        version: t.version,
        cluster,
        session,
        routeTo,
        via: via ? factsOf(via.name) : undefined,
        commandTimeoutMs: o.commandTimeoutMs,
        output,
      });
      // A deploy tells every host who its peers are before the service's own steps run.
      if (o.operation === 'deploy') await ctx.write(CLUSTER_FILE, `${JSON.stringify(cluster, null, 2)}\n`, { mode: 0o644 });
      const note = await op(ctx);
      if (o.operation === 'deploy') await markDeployed(o, t, (command) => ctx.run(command));
      if (typeof note === 'object' && note !== null) return { ...result('ok', note.note), changed: note.changed, data: note.data };
      return result('ok', typeof note === 'string' ? note : undefined);
    } catch (e) {
      const r = outcomeOf(e, connected, o.service, o.operation);
      return result(r.outcome, r.detail);
    }
  };

  try {
    return await mapBounded(targets, o.parallel, async (t) => {
      const r = await one(t);
      o.onResult?.(r);
      return r;
    });
  } finally {
    await sessions.closeAll();
  }
}

/** A deploy that succeeded on a host: its marker on the host (what `lab env` reads back), and its version in the inventory. */
async function markDeployed(o: OperationRun, t: Target, run: (command: string) => Promise<unknown>): Promise<void> {
  await run(markDeployedCommand(o.service.name, t.version));
  // The inventory keeps the version of the host's own service (its group's): another deployed to it by --role leaves it be.
  if (runsOwn(o.service, t.host)) {
    await o.inventory.update((d) => {
      const h = d.hosts[t.host.name];
      if (h) h.serviceVersion = t.version;
    });
  }
}

/**
 * An operation over all its hosts at once (a playbook): every host starts
 * together and ends with the run; a deploy that succeeded on a host is
 * marked there as any deploy is.
 */
async function runFleet(o: OperationRun, op: FleetOperation, targets: Target[], live: HostRecord[], sessions: SessionPool): Promise<HostResult[]> {
  const base = (t: Target) => ({ host: t.host.name, operation: o.operation, env: t.host.env, role: t.host.role, version: t.version });
  const running = targets.filter((t) => !t.skip);
  for (const t of running) o.onStart?.(t.host.name);
  const started = Date.now();
  const fleet = running.length
    ? await op.fleet({
        paths: o.lab.paths,
        operation: o.operation,
        hosts: running.map((t) => ({ name: t.host.name, version: t.version })),
        live,
        parallel: o.parallel,
        connectTimeoutMs: o.connectTimeoutMs,
        commandTimeoutMs: o.commandTimeoutMs,
      })
    : [];
  const ms = Date.now() - started;
  const results: HostResult[] = [];
  for (const t of targets) {
    const f = fleet.find((r) => r.host === t.host.name);
    let r: HostResult = f ? { ...base(t), ms, outcome: f.outcome, detail: f.detail, output: f.output, ...(f.changed === undefined ? {} : { changed: f.changed }) } : { ...base(t), outcome: 'skipped', ms: 0, detail: t.skip, output: [] };
    if (f?.outcome === 'ok' && o.operation === 'deploy') {
      try {
        await markDeployed(o, t, async (command) => {
          const x = await (await sessions.for(t.host.name)).exec(command, o.commandTimeoutMs);
          if (x.code !== 0) throw new OperationFailed(`marking the deploy failed (exit ${x.code}): ${x.stderr.trim() || x.stdout.trim()}`);
        });
      } catch (e) {
        r = { ...r, ...outcomeOf(e, true, o.service, o.operation) };
      }
    }
    if (!t.skip) o.onResult?.(r);
    results.push(r);
  }
  return results;
}

/** One SSH connection per host for the whole run, shared when an operation reaches another host (--via); a failed one is tried again. */
class SessionPool {
  private readonly sessions = new Map<string, Promise<Session>>();
  constructor(
    private readonly records: Record<string, HostRecord>,
    private readonly privateKey: string,
    private readonly connectTimeoutMs: number,
  ) {}

  for(name: string): Promise<Session> {
    let s = this.sessions.get(name);
    if (!s) {
      const record = this.records[name]!;
      const reach = sshTarget(record)!;
      s = Session.open({ host: name, address: reach.address, port: reach.port, hostKey: record.hostKey!, privateKey: this.privateKey, connectTimeoutMs: this.connectTimeoutMs });
      s.catch(() => this.sessions.delete(name));
      this.sessions.set(name, s);
    }
    return s;
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.sessions.values()].map((s) => s.then((x) => x.close()).catch(() => undefined)));
  }
}

/**
 * What an error means for a host's result: the operation failed (its own
 * word, or lab's), SSH refused us (a changed host key, our key not taken),
 * a command ran over its time, or the host was never reached. Anything else
 * is the service's own code throwing: its author needs the place.
 */
export function outcomeOf(e: unknown, connected: boolean, service: Service, operation: string): { outcome: Outcome; detail: string } {
  if (e instanceof SessionError) {
    const outcome: Outcome = e.failure === 'hostkey' || e.failure === 'auth' ? 'refused' : e.failure === 'command-timeout' ? 'timeout' : connected ? 'failed' : 'unreachable';
    return { outcome, detail: e.message };
  }
  if (e instanceof LabError) return { outcome: 'failed', detail: e.message };
  const where = e instanceof Error ? (e.stack ?? '').split('\n').find((l) => l.includes(service.dir))?.trim() : undefined;
  return { outcome: 'failed', detail: `${service.name}/service.ts ${operation} threw: ${e instanceof Error ? e.message : String(e)}${where ? ` (${where})` : ''}` };
}

/** Hosts that count as failed for the exit code (skipped ones do not). */
export function failedResults(results: HostResult[]): HostResult[] {
  return results.filter((r) => r.outcome !== 'ok' && r.outcome !== 'skipped');
}
