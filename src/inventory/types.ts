/** The inventory's data, as stored in inventory/db.json. */

/**
 * installing: fetched its kickstart, no callback yet.
 * up: called back, or answered the last probe: a current host.
 * down: did not answer the last probe.
 * stalled: installing for longer than its deadline.
 */
export type HostState = 'installing' | 'up' | 'down' | 'stalled';

export interface Reach {
  /** Where lab reaches the host from this machine when that differs from its own address (a forwarded port). */
  address: string;
  port: number;
}

export interface HostRecord {
  name: string;
  /** Absent for a host that called back with the lab's token but is not declared in environments.ts. */
  env?: string;
  role?: string;
  image?: string;
  mac?: string;
  ip?: string;
  /** The host's SSH public host key ("ssh-ed25519 AAAA..."), as sent at its callback: the one lab's own connections pin. */
  hostKey?: string;
  /** Its keys of other types, sent at the same callback (RSA, for clients that pick it): pinned too, in known_hosts. */
  otherKeys?: string[];
  state: HostState;
  /** ISO times. */
  firstSeen: string;
  lastSeen: string;
  lastCallback?: string;
  installStarted?: string;
  /** When its newest install reached each stage, as its own callbacks said (%pre, %post, the first boot after). */
  stages?: InstallStages;
  lastProbe?: string;
  bootCount: number;
  reach?: Reach;
  /** The hypervisor its VM was placed on (provider libvirt). */
  hypervisor?: string;
  /** The service version last deployed to it. */
  serviceVersion?: string;
  /**
   * A host key offered at a callback and refused, since it differs from the
   * pinned one outside an install window (with the other keys offered
   * alongside): never used; \`lab hosts rekey\` accepts it on purpose.
   */
  refusedKey?: { key: string; otherKeys?: string[]; time: string; from: string };
}

/**
 * A time during which lab expects a host to install (a build, a clone, a
 * start that recreates it) or the user opened one (\`lab kickstart --allow\`):
 * its kickstart is served, and its first callback may pin a new host key.
 * The callback that ends the install closes it.
 */
export interface InstallWindow {
  /** ISO times. */
  opened: string;
  until: string;
  /** What opened it: build, clone, allow, rekey. */
  by: string;
}

/** Something a person should look at: a refused callback, a changed host key. */
export interface Alert {
  time: string;
  host: string;
  kind: 'host-key-changed' | 'callback-refused';
  detail: string;
}

export interface Lease {
  ip?: string;
  mac: string;
}

/** The stages an install reports by callback: its %pre ran, its %post ran, the installed system booted. */
export const INSTALL_STAGES = ['started', 'installed', 'up'] as const;
export type InstallStage = (typeof INSTALL_STAGES)[number];
/** ISO times, per stage reached. */
export type InstallStages = Partial<Record<InstallStage, string>>;

export interface BootEvent {
  time: string;
  kind: 'kickstart' | 'callback' | 'stage';
  /** kind stage: which one. */
  stage?: InstallStage;
  host: string;
  ip?: string;
  mac?: string;
}

/** Install state of an image, tracked as Cobbler does, but from authenticated callbacks. */
export type ImageState = 'installing' | 'installed' | 'stalled' | 'failed';

export interface ImageRecord {
  name: string;
  state: ImageState;
  install: 'kernel' | 'pxe';
  /** ISO times. */
  started: string;
  finished?: string;
  /** Why it failed or stalled, with the console's last lines saved beside it. */
  reason?: string;
  consoleLog?: string;
}

/** What `lab monitor <env>` keeps between cycles and across restarts. */
export interface MonitorRecord {
  env: string;
  /** Hosts the monitor keeps running, by name. */
  members: string[];
  /** When the monitor started each host it is waiting for (ISO time). */
  started: Record<string, string>;
  /** The policy's state per group ("<env>/<role>"). */
  groups: Record<string, { highStreak: number; lowStreak: number; lastChange?: number; unhealthy: Record<string, number>; replaced?: Record<string, { count: number; last: number; next: number }> }>;
  /** The live hosts at the end of the last cycle: a change brings services up and tells the balancer. */
  live?: string[];
  lastCycle?: string;
}

/** What a declared machine is: a host of an environment, or the VM an image is built as. */
export type MachineKind = 'host' | 'image';

export interface InventoryData {
  version: 2;
  /** Hosts of the environments (and hosts made by hand, when lab serve records them). */
  hosts: Record<string, HostRecord>;
  /** The VM each image is built as, by image name: not a host of any environment, so no listing, deploy or balancer sees it. */
  imageVms: Record<string, HostRecord>;
  leases: Record<string, Lease>;
  images: Record<string, ImageRecord>;
  events: BootEvent[];
  monitors?: Record<string, MonitorRecord>;
  windows?: Record<string, InstallWindow>;
  /** The newest MAX_ALERTS alerts. */
  alerts?: Alert[];
  /** Random, made at the first lease: the lab's MACs derive from it, so two labs of one name differ. */
  macSeed?: string;
  /** The last line of inventory/db.journal this file holds (journal.ts). */
  journalSeq?: number;
}

/**
 * A map keyed by names from outside (host names): no prototype, so a host
 * named "constructor" is a record like any other, not Object's constructor.
 */
export function keyed<T>(from: Record<string, T> = {}): Record<string, T> {
  return Object.assign(Object.create(null) as Record<string, T>, from);
}

export function emptyInventory(): InventoryData {
  return { version: 2, hosts: keyed(), imageVms: keyed(), leases: keyed(), images: keyed(), events: [], windows: keyed(), alerts: [] };
}

/** Where the records of machines of this kind are kept. */
export function recordsOf(data: InventoryData, kind: MachineKind): Record<string, HostRecord> {
  return kind === 'image' ? data.imageVms : data.hosts;
}

/** A machine's record by name, a host's or an image VM's (names are unique across both). */
export function machineRecord(data: InventoryData, name: string): HostRecord | undefined {
  return data.hosts[name] ?? data.imageVms[name];
}

export const MAX_ALERTS = 500;

/** The newest boot events kept in the database; booted.log keeps them all. */
export const MAX_EVENTS = 5000;
