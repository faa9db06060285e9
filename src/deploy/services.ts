import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as z from 'zod/mini';
import '../util/zod-locale.js';
import { importLabModule, type Lab } from '../config/load.js';
import { UsageError } from '../errors.js';
import { shown } from '../project/paths.js';
import { serviceNames } from '../project/services.js';
import { cachedValue, keepValue } from '../project/checked-cache.js';
import type { FleetOperation, Operation, ServiceDefinition, ServiceSpec } from './types.js';
import { isShellService, shellService } from './stages.js';
import { isPlaybookService, playbookService } from './playbook.js';

/** A service folder, loaded and checked: its service.ts, its shell stages or its playbook. */
export interface Service {
  name: string;
  dir: string;
  definition: ServiceSpec;
}

const operation = z.custom<Operation>((v) => typeof v === 'function', { error: 'expected a function (ctx) => ...' });
const name = (example: string) => z.string().check(z.regex(/^[a-z][a-z0-9-]*$/, { error: `expected ${example}` }));

// zod/mini, as the inventory's schema (inventory/schema.ts says why): this module is loaded by every command that lists services.
const serviceSchema = z.strictObject({
  description: z.optional(z.string()),
  role: name('a role name such as "worker"'),
  versions: z.array(z.string().check(z.minLength(1))).check(z.minLength(1, { error: 'expected at least one version' })),
  files: z.optional(z.array(z.string().check(z.minLength(1)))),
  operations: z
    .record(name('an operation name such as "deploy"'), operation)
    .check(z.refine((ops) => Object.keys(ops).length > 0, { error: 'expected at least one operation' })),
});

/** What `lab services` shows of a service, without its operations' code. */
export interface ServiceSummary {
  name: string;
  description?: string;
  role: string;
  versions: string[];
  files?: string[];
  operations: string[];
}

/** A service's summary: kept per content of its service.ts (project/checked-cache.ts), so listing them compiles none that is unchanged. */
export async function serviceSummary(lab: Lab, name: string): Promise<ServiceSummary> {
  const { dir, file } = serviceFile(lab, name);
  if (isShellService(dir)) return summaryOf(name, shellService(lab, name, dir));
  if (isPlaybookService(dir)) return summaryOf(name, await playbookService(lab, name, dir));
  const source = readFileSync(file, 'utf8');
  const kept = cachedValue<ServiceSummary>(lab.paths, `service-${name}`, source);
  if (kept) {
    checkService(lab, name, kept);
    return kept;
  }
  const summary = summaryOf(name, (await loadService(lab, name)).definition);
  keepValue(lab.paths, `service-${name}`, source, summary);
  return summary;
}

const summaryOf = (name: string, d: ServiceSpec): ServiceSummary => ({
  name,
  ...(d.description === undefined ? {} : { description: d.description }),
  role: d.role,
  versions: d.versions,
  ...(d.files ? { files: d.files } : {}),
  operations: Object.keys(d.operations),
});

function serviceFile(lab: Lab, name: string): { dir: string; file: string } {
  const names = serviceNames(lab.paths.services);
  if (!names.includes(name)) {
    throw new UsageError(`no service "${name}" in ${shown(lab.paths, lab.paths.services)}; services: ${names.join(', ') || 'none'}`, 'see `lab services`');
  }
  const dir = path.join(lab.paths.services, name);
  return { dir, file: path.join(dir, 'service.ts') };
}

export async function loadService(lab: Lab, name: string): Promise<Service> {
  const { dir, file } = serviceFile(lab, name);
  if (isShellService(dir)) return { name, dir, definition: shellService(lab, name, dir) };
  if (isPlaybookService(dir)) return { name, dir, definition: await playbookService(lab, name, dir) };
  const where = shown(lab.paths, file);
  const raw = await importLabModule(file, where);
  const parsed = serviceSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = issue.path.map(String).join('.') || '(top level)';
    const msg = issue.code === 'unrecognized_keys' ? `unknown field ${issue.keys.map((k) => `"${k}"`).join(', ')}` : issue.message.replace(/^Invalid input: /, '');
    throw new UsageError(`${where}: ${field}: ${msg}`, raw === undefined ? 'expected `export default defineService({...})`' : undefined);
  }
  const definition = parsed.data as ServiceDefinition;
  checkService(lab, name, definition);
  return { name, dir, definition };
}

/** Its files are there, and a group's version is one the service can deploy. */
function checkService(lab: Lab, name: string, def: Pick<ServiceDefinition, 'versions' | 'files'>): void {
  const { dir, file } = serviceFile(lab, name);
  for (const f of def.files ?? []) {
    if (!existsSync(path.resolve(dir, f))) throw new UsageError(`${shown(lab.paths, file)}: files: ${f} does not exist in ${shown(lab.paths, dir)}`);
  }
  for (const [env, e] of Object.entries(lab.config.environments)) {
    e.groups.forEach((g, i) => {
      if (g.service === name && g.version !== undefined && !def.versions.includes(g.version)) {
        throw new UsageError(
          `${shown(lab.paths, lab.paths.config)}: environments.${env}.groups[${i}].version: service ${name} has no version "${g.version}"; versions: ${def.versions.join(', ')}`,
        );
      }
    });
  }
}

/** The named operation, or a usage error listing the service's operations. */
export function operationOf(service: Service, op: string): Operation | FleetOperation {
  const ops = service.definition.operations;
  if (!Object.hasOwn(ops, op)) {
    throw new UsageError(`service ${service.name} has no operation "${op}"; operations: ${Object.keys(ops).join(', ')}`);
  }
  return ops[op]!;
}
