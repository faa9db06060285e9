import { groupSize, type DeclaredHost, type Lab } from '../config/load.js';
import type { EnvironmentConfig, GroupConfig } from '../config/schema.js';
import { UsageError } from '../errors.js';

/** all: every group at its count, or its max. min: at its count, or its min. */
export type StartMode = 'all' | 'min';

export function environment(lab: Lab, env: string): EnvironmentConfig {
  const e = lab.config.environments[env];
  if (!e) throw new UsageError(`no environment "${env}" in environments.ts; environments: ${Object.keys(lab.config.environments).join(', ') || 'none'}`);
  return e;
}

/** The hosts a start brings up: the first slots of each group, in declaration order. */
export function wantedHosts(lab: Lab, env: string, mode: StartMode): DeclaredHost[] {
  const e = environment(lab, env);
  return e.groups.flatMap((g) => lab.hosts.filter((h) => h.env === env && h.role === g.role && h.index <= groupSize(g, mode)));
}

/** Every declared host of the environment (all slots of every group). */
export function envHosts(lab: Lab, env: string): DeclaredHost[] {
  environment(lab, env);
  return lab.hosts.filter((h) => h.env === env);
}

export function groupOf(lab: Lab, host: DeclaredHost): GroupConfig {
  return lab.config.environments[host.env]!.groups.find((g) => g.role === host.role)!;
}
