import type { Distro } from '../config/schema.js';
import type { HostRecord } from '../inventory/types.js';
import type { LabPaths } from '../project/paths.js';

/**
 * What a service (services/<name>/service.ts) is made of and what its
 * operations get. These are the types a service author writes against.
 */

/** A host as an operation sees it. */
export interface HostFacts {
  name: string;
  env: string;
  role: string;
  image: string;
  distro: Distro;
  /** The host's own address on the lab network. */
  address: string;
  mac?: string;
}

/** One live host of the lab, as written to /etc/lab/cluster.json. */
export interface ClusterHost {
  name: string;
  env: string;
  role: string;
  image: string;
  address: string;
  service?: string;
  version?: string;
}

export interface ClusterFacts {
  /** When lab wrote these facts (ISO time). */
  generated: string;
  /** The host the file is on. */
  self: string;
  env: string;
  /** Every live host of the lab, all environments. */
  hosts: ClusterHost[];
}

export interface RunOptions {
  /** Seconds; the operation's command timeout when not given. */
  timeout?: number;
  /** Return a non-zero exit instead of failing the operation. */
  allowFail?: boolean;
  /** Fed to the command's standard input. */
  stdin?: string;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface FileOptions {
  /** File mode, 0o644 when not given. */
  mode?: number;
}

export interface HttpOptions {
  port?: number;
  /** Another live host of the cluster to send the request to (e.g. ctx.via.name), instead of this one. */
  host?: string;
  method?: string;
  /** Seconds. */
  timeout?: number;
}

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** Milliseconds from request to full response. */
  ms: number;
}

export interface OpContext {
  service: string;
  operation: string;
  host: HostFacts;
  /**
   * The version this run is about: --version; else for deploy the host's group's,
   * for other operations the one deployed on the host; else the service's newest.
   */
  version: string;
  cluster: ClusterFacts;
  /** With --via ROLE: the live host of that role in this host's environment that requests go through (a load balancer). */
  via?: HostFacts;
  /** Live hosts of this host's environment, optionally of one role. */
  peers(role?: string): ClusterHost[];
  /** Run a shell command on the host; output captured; a non-zero exit fails the operation unless allowFail. */
  run(command: string, opts?: RunOptions): Promise<RunResult>;
  /** Upload a file of the service folder (path relative to it) to the host. */
  put(file: string, remote: string, opts?: FileOptions): Promise<void>;
  /** Write content to a file on the host. */
  write(remote: string, content: string | Buffer, opts?: FileOptions): Promise<void>;
  /**
   * Render a nunjucks template of the service folder with host, version,
   * cluster, service (and vars) and upload the result; returns it.
   */
  render(template: string, remote: string, opts?: FileOptions & { vars?: Record<string, unknown> }): Promise<string>;
  /** An HTTP request from the lab host to the host (through its SSH connection when it sits behind NAT). */
  http(path: string, opts?: HttpOptions): Promise<HttpResult>;
  /** A line for this host's output. */
  log(message: string): void;
  /** End the operation on this host as failed, with a reason for people. */
  fail(message: string): never;
}

/**
 * What an operation reports beyond succeeding: a note for the summary table,
 * whether it changed anything on the host (lab env and the monitor act on
 * it; a reconfigure that found nothing to do says changed: false), and data
 * for whoever ran it.
 */
export interface OperationReport {
  note?: string;
  changed?: boolean;
  data?: unknown;
}

/** What an operation returns: nothing, a short note for the summary table, or a report. */
export type Operation = (ctx: OpContext) => Promise<string | void | OperationReport> | string | void | OperationReport;

export interface ServiceDefinition {
  /** One line for `lab services`. */
  description?: string;
  /** The role whose hosts run the service (groups naming the service in environments.ts run it too). */
  role: string;
  /** The versions that can be deployed, oldest first. */
  versions: string[];
  /** The files the operations upload, relative to the service folder: checked to exist when the service loads. */
  files?: string[];
  operations: Record<string, Operation>;
}

/** One host of a fleet operation's run, at the version it is brought to. */
export interface FleetHost {
  name: string;
  version: string;
}

/** What a fleet operation is given: its hosts, the live hosts around them (for groups), the limits lab's own operations keep. */
export interface FleetRun {
  paths: LabPaths;
  operation: string;
  hosts: FleetHost[];
  /** Every live host with a pinned key: what an inventory of groups is made of (the run is limited to hosts). */
  live: HostRecord[];
  parallel: number;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
}

/** A host's result of a fleet operation, as lab reports a host's. */
export interface FleetResult {
  host: string;
  outcome: 'ok' | 'failed' | 'unreachable' | 'timeout';
  detail?: string;
  changed?: boolean;
  output: string[];
}

/**
 * An operation run once over all its hosts together (an Ansible playbook),
 * not once per host: it reports each host's result.
 */
export interface FleetOperation {
  fleet: (run: FleetRun) => Promise<FleetResult[]>;
}

/** A service as lab runs it: a service.ts's definition, or one lab made of a folder (shell stages, a playbook). */
export interface ServiceSpec extends Omit<ServiceDefinition, 'operations'> {
  operations: Record<string, Operation | FleetOperation>;
}
