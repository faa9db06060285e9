import type { HostRecord } from '../inventory/types.js';
import type { LabPaths } from '../project/paths.js';
import { LabError } from '../errors.js';
import { privateDir, writeFileAtomicSync } from '../util/files.js';
import { allKeys } from '../inventory/values.js';

/**
 * One argument of an OpenSSH config line. What comes from the inventory was
 * checked when it was read (addresses, names, keys); this is the last guard:
 * a value that could end the line or start another option is refused, and
 * paths are quoted (a lab folder may have spaces in its name).
 */
function arg(value: string | number, what: string): string {
  const v = String(value);
  if (v === '' || /[\x00-\x1f\x7f"]/.test(v)) throw new LabError(`refusing to write ${what} ${JSON.stringify(v)} into ssh_config`);
  return /[\s#'\\]/.test(v) ? `"${v}"` : v;
}

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
  const knownHostsPath = paths.knownHosts;
  const blocks = sshable(hosts).map((h) => {
    const t = sshTarget(h)!;
    return [
      `Host ${arg(h.name, `the host name of ${h.name}`)}`,
      `  HostName ${arg(t.address, `the address of ${h.name}`)}`,
      `  Port ${arg(t.port, `the port of ${h.name}`)}`,
      '  User root',
      `  IdentityFile ${arg(paths.sshKey, 'the key path')}`,
      '  IdentitiesOnly yes',
      `  HostKeyAlias ${arg(h.name, `the host name of ${h.name}`)}`,
      `  UserKnownHostsFile ${arg(knownHostsPath, 'the known_hosts path')}`,
      '  StrictHostKeyChecking yes',
      '  LogLevel ERROR',
    ].join('\n');
  });
  return {
    config: `# Written by lab for ${paths.dir}: the live hosts, their keys pinned.\n${blocks.join('\n\n')}\n`,
    knownHosts: sshable(hosts).flatMap((h) => allKeys(h).map((k) => `${h.name} ${k}`)).join('\n') + '\n',
  };
}

/** Write inventory/ssh_config and inventory/known_hosts (private, each whole or not at all); returns the config's path. */
export function writeSshFiles(paths: LabPaths, hosts: HostRecord[]): string {
  const files = sshFiles(paths, hosts);
  const config = paths.sshConfig;
  privateDir(paths.inventory);
  writeFileAtomicSync(paths.knownHosts, files.knownHosts);
  writeFileAtomicSync(config, files.config);
  return config;
}
