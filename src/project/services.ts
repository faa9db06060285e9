import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';

// Which services a lab folder has, found without loading any of them (the
// entry point and completion ask before a command is chosen).

/** Names of the folders under services/ that hold a service.ts, shell stages (stages/) or an Ansible playbook (playbook.yml), sorted. */
export function serviceNames(servicesDir: string): string[] {
  if (!existsSync(servicesDir)) return [];
  return readdirSync(servicesDir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && ['service.ts', 'stages', 'playbook.yml'].some((f) => existsSync(path.join(servicesDir, d.name, f))))
    .map((d) => d.name)
    .sort();
}
