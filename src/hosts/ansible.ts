import type { HostRecord } from '../inventory/types.js';
import { sshable } from './sshconfig.js';
import { LabError } from '../errors.js';

/** A path as one shell word inside Ansible's single-quoted INI value; one that could end either early is refused. */
function shellQuoted(p: string): string {
  if (/['"\\$`\x00-\x1f\x7f]/.test(p)) throw new LabError(`refusing to write the path ${JSON.stringify(p)} into an Ansible inventory: move the lab to a folder without quotes or $ in its name`);
  return `"${p}"`;
}

/** A host variable's value (a version): plain words only, so that no quoting of Ansible's INI parser is needed. */
function iniValue(v: string, what: string): string {
  if (!/^[A-Za-z0-9._+:@-]+$/.test(v)) throw new LabError(`refusing to write ${what} (${JSON.stringify(v)}) into an Ansible inventory: expected letters, digits and . _ + : @ -`);
  return v;
}

/** Ansible group names take letters, digits and underscores. */
const group = (name: string) => name.replace(/[^A-Za-z0-9_]/g, '_');

/**
 * An Ansible inventory (INI) of the live hosts, grouped by role and by env.
 * Ansible connects through lab's OpenSSH config (sshConfigPath), so it gets
 * the same addresses, forwarded ports and pinned host keys as `ssh -F`.
 */
export function ansibleInventory(hosts: HostRecord[], sshConfigPath: string, labDir: string, hostVars: Record<string, Record<string, string>> = {}): string {
  const live = sshable(hosts);
  const line = (name: string) => [name, ...Object.entries(hostVars[name] ?? {}).map(([k, v]) => `${k}=${iniValue(v, `${k} of ${name}`)}`)].join(' ');
  const groups = new Map<string, string[]>();
  for (const h of live) {
    for (const g of [h.role, h.env]) if (g) groups.set(group(g), [...(groups.get(group(g)) ?? []), line(h.name)]);
  }
  const lines = [`# Written by lab for ${labDir}: the live hosts, by role and by env.`, '[all:vars]', 'ansible_user=root', `ansible_ssh_common_args='-F ${shellQuoted(sshConfigPath)}'`, ''];
  const ungrouped = live.filter((h) => !h.role && !h.env).map((h) => line(h.name));
  if (ungrouped.length) lines.push('[ungrouped]', ...ungrouped, '');
  for (const [g, names] of [...groups.entries()].sort()) lines.push(`[${g}]`, ...names, '');
  return lines.join('\n');
}
