import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { HostRecord } from '../inventory/types.js';
import type { LabPaths } from '../project/paths.js';

/** Where SSH reaches a host from this machine: its forwarded port, or its address. */
export function sshTarget(h: HostRecord): { address: string; port: number } | undefined {
  if (h.reach) return h.reach;
  return h.ip ? { address: h.ip, port: 22 } : undefined;
}

/** Hosts SSH can be pointed at safely: an address and the host key sent at the callback. */
export function sshable(hosts: HostRecord[]): HostRecord[] {
  return hosts.filter((h) => h.hostKey && sshTarget(h));
}

/**
 * An OpenSSH config for these hosts and the known-hosts file it pins them
 * with. HostKeyAlias keys each entry by host name, so a forwarded port or a
 * reused address never matches another host's key.
 */
export function sshFiles(paths: LabPaths, hosts: HostRecord[]): { config: string; knownHosts: string } {
  const knownHostsPath = path.join(paths.inventory, 'known_hosts');
  const blocks = sshable(hosts).map((h) => {
    const t = sshTarget(h)!;
    return [
      `Host ${h.name}`,
      `  HostName ${t.address}`,
      `  Port ${t.port}`,
      '  User root',
      `  IdentityFile ${paths.sshKey}`,
      '  IdentitiesOnly yes',
      `  HostKeyAlias ${h.name}`,
      `  UserKnownHostsFile ${knownHostsPath}`,
      '  StrictHostKeyChecking yes',
      '  LogLevel ERROR',
    ].join('\n');
  });
  return {
    config: `# Written by lab for ${paths.dir}: the live hosts, their keys pinned.\n${blocks.join('\n\n')}\n`,
    knownHosts: sshable(hosts).map((h) => `${h.name} ${h.hostKey}`).join('\n') + '\n',
  };
}

/** Write inventory/ssh_config and inventory/known_hosts; returns the config's path. */
export function writeSshFiles(paths: LabPaths, hosts: HostRecord[]): string {
  const files = sshFiles(paths, hosts);
  const config = path.join(paths.inventory, 'ssh_config');
  writeFileSync(path.join(paths.inventory, 'known_hosts'), files.knownHosts);
  writeFileSync(config, files.config);
  return config;
}
