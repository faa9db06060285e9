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
  sshKey: string;
  sshPublicKey: string;
  token: string;
  serverState: string;
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
    sshKey: path.join(inventory, 'lab_ed25519'),
    sshPublicKey: path.join(inventory, 'lab_ed25519.pub'),
    token: path.join(inventory, 'callback-token'),
    serverState: path.join(inventory, 'server.json'),
  };
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
