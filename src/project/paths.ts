import { homedir } from 'node:os';
import path from 'node:path';

/** Where everything of one lab folder lives. One place, so no module guesses. */
export interface LabPaths {
  dir: string;
  config: string;
  kickstart: string;
  pxe: string;
  iso: string;
  services: string;
  inventory: string;
  db: string;
  bootLog: string;
  /** Changes of commits made during a storm, until db.json is rewritten whole (inventory/journal.ts). */
  journal: string;
  sshKey: string;
  sshPublicKey: string;
  token: string;
  serverState: string;
  /** OpenSSH's view of the live hosts (lab ssh-config): their keys pinned. */
  knownHosts: string;
  sshConfig: string;
  /** Each provider's VMs (a folder per VM). */
  vms: string;
  vbox: string;
  /** The TFTP tree of PXE installs (QEMU's built-in TFTP serves it). */
  tftp: string;
  /** Consoles of failed or stalled installs, kept. */
  logs: string;
  /** The monitor daemon of an environment: its pid and its JSON-lines log. */
  monitorPid(env: string): string;
  monitorLog(env: string): string;
  /** An environment's snapshots: one JSON file each, what the inventory knew of its hosts (their VMs hold the rest). */
  snapshots(env: string): string;
}

export function labPaths(dir: string): LabPaths {
  const root = path.resolve(dir);
  const inventory = path.join(root, 'inventory');
  return {
    dir: root,
    config: path.join(root, 'environments.ts'),
    kickstart: path.join(root, 'kickstart'),
    pxe: path.join(root, 'pxe'),
    iso: path.join(root, 'iso'),
    services: path.join(root, 'services'),
    inventory,
    db: path.join(inventory, 'db.json'),
    bootLog: path.join(inventory, 'booted.log'),
    journal: path.join(inventory, 'db.journal'),
    sshKey: path.join(inventory, 'lab_ed25519'),
    sshPublicKey: path.join(inventory, 'lab_ed25519.pub'),
    token: path.join(inventory, 'callback-token'),
    serverState: path.join(inventory, 'server.json'),
    knownHosts: path.join(inventory, 'known_hosts'),
    sshConfig: path.join(inventory, 'ssh_config'),
    vms: path.join(inventory, 'vms'),
    vbox: path.join(inventory, 'vbox'),
    tftp: path.join(inventory, 'tftp'),
    logs: path.join(inventory, 'logs'),
    monitorPid: (env) => path.join(inventory, `monitor-${env}.pid`),
    monitorLog: (env) => path.join(inventory, `monitor-${env}.log`),
    snapshots: (env) => path.join(inventory, 'snapshots', env),
  };
}

/** lab's cache for this user (built guests, installer kernels, the KVM probe): LAB_CACHE, else ~/.cache/lab. */
export function cacheRoot(): string {
  return process.env.LAB_CACHE ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(homedir(), '.cache'), 'lab');
}

/** p relative to dir when it lies inside dir ('' for dir itself); undefined when it lies outside. */
export function within(dir: string, p: string): string | undefined {
  const rel = path.relative(dir, p);
  return rel.startsWith('..') || path.isAbsolute(rel) ? undefined : rel;
}

/** A path as a person should read it in a message: relative to the lab when inside it. */
export function shown(paths: LabPaths, p: string): string {
  return within(paths.dir, p) || p;
}
