import type { Lab, DeclaredHost } from '../config/load.js';
import type { HostRecord } from '../inventory/types.js';
import { UsageError } from '../errors.js';
import { calledBack, isLive } from '../hosts/manager.js';
import type { Service } from './services.js';
import type { ClusterHost } from './types.js';

/** Which hosts an operation runs on, chosen from the command line. */
export interface Selection {
  env?: string;
  /** Instead of the service's own role. */
  role?: string;
  /** Exactly these hosts (declared names), whatever their role or state. */
  hosts?: string[];
  version?: string;
}

/**
 * The version an operation is about on a host: --version; else, for a deploy,
 * the host's group's; for any other operation, the one deployed there; else the
 * service's newest.
 */
function versionFor(service: Service, op: string, host: DeclaredHost, record: HostRecord | undefined, sel: Selection): string {
  // The group's version, and the one recorded on the host, are of the host's own service: not of another run on it by --role or --hosts.
  const own = runsOwn(service, host);
  const deployed = op === 'deploy' || !own ? undefined : record?.serviceVersion;
  return sel.version ?? deployed ?? (own ? host.version : undefined) ?? service.definition.versions.at(-1)!;
}

/** Whether the service is the host's own: its group names it, or names none and has the service's role. */
export function runsOwn(service: Service, host: DeclaredHost): boolean {
  return host.service === service.name || (host.service === undefined && host.role === service.definition.role);
}

export interface Target {
  host: DeclaredHost;
  record?: HostRecord;
  version: string;
  /** Set when the host is not run on, with the reason shown in the summary. */
  skip?: string;
}

export function selectTargets(lab: Lab, service: Service, op: string, records: Record<string, HostRecord>, sel: Selection): Target[] {
  const def = service.definition;
  if (sel.version !== undefined && !def.versions.includes(sel.version)) {
    throw new UsageError(`--version: service ${service.name} has no version "${sel.version}"; versions: ${def.versions.join(', ')}`);
  }
  if (sel.env !== undefined && !(sel.env in lab.config.environments)) {
    throw new UsageError(`--env: no environment "${sel.env}"; environments: ${Object.keys(lab.config.environments).join(', ')}`);
  }
  if (sel.role !== undefined && !lab.hosts.some((h) => h.role === sel.role)) {
    throw new UsageError(`--role: no role "${sel.role}" in any environment; roles: ${[...new Set(lab.hosts.map((h) => h.role))].join(', ')}`);
  }
  const inEnv = (h: DeclaredHost) => sel.env === undefined || h.env === sel.env;

  let chosen: DeclaredHost[];
  if (sel.hosts) {
    chosen = sel.hosts.map((name) => {
      const h = lab.hosts.find((x) => x.name === name);
      if (!h) throw new UsageError(`--hosts: no host "${name}" in environments.ts`, 'see `lab hosts list`');
      if (!inEnv(h)) throw new UsageError(`--hosts: ${name} is in environment ${h.env}, not ${sel.env}`);
      return h;
    });
  } else {
    const runs = (h: DeclaredHost) => (sel.role !== undefined ? h.role === sel.role : runsOwn(service, h));
    chosen = lab.hosts.filter((h) => runs(h) && inEnv(h));
  }

  const targets: Target[] = [];
  for (const host of chosen) {
    const record = records[host.name];
    const version = versionFor(service, op, host, record, sel);
    if (sel.hosts) {
      // Named on purpose: tried whatever its recorded state, and reported if it cannot be.
      targets.push({ host, record, version, skip: calledBack(record) && record.hostKey ? undefined : 'no boot callback recorded: not built or not booted yet' });
    } else if (!calledBack(record)) {
      continue; // a slot of a group that was never built (a min/max group below its max)
    } else if (record.state !== 'up') {
      targets.push({ host, record, version, skip: `${record.state} at the last sweep (lab hosts filter; or name it with --hosts)` });
    } else if (!record.hostKey) {
      targets.push({ host, record, version, skip: 'no host key recorded at its callback' });
    } else {
      targets.push({ host, record, version });
    }
  }
  return targets;
}

/** The live hosts of the lab, for /etc/lab/cluster.json and ctx.peers(). */
export function clusterHosts(lab: Lab, records: Record<string, HostRecord>): ClusterHost[] {
  const out: ClusterHost[] = [];
  for (const h of lab.hosts) {
    const r = records[h.name];
    if (!isLive(r)) continue;
    const c: ClusterHost = { name: h.name, env: h.env, role: h.role, image: h.image, address: r.ip! };
    if (h.service) c.service = h.service;
    const version = r.serviceVersion ?? h.version;
    if (version) c.version = version;
    out.push(c);
  }
  return out;
}
