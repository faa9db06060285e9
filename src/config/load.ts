import { existsSync, accessSync, constants, readFileSync } from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import type { LabConfig, ImageConfig, GroupConfig, Placement } from './schema.js';
import { parseCidr, inCidr } from '../util/ipv4.js';
import { UsageError, messageOf } from '../errors.js';
import { cacheRoot, labPaths, shown, type LabPaths } from '../project/paths.js';
import { packageRoot } from '../project/root.js';
import { cachedValue, keepValue } from '../project/checked-cache.js';
import { fieldPath, issueText } from '../util/issues.js';
import { DISTROS } from '../distros/index.js';
import { PROVIDERS, PROVIDER_NAMES } from '../providers/index.js';
import type { MachineKind } from '../inventory/types.js';

/** A host as environments.ts declares it: one per slot of a group, named <env>-<role>-<n>. */
export interface DeclaredHost {
  /** A host of an environment, or the VM an image is built as (its record is kept apart: see the inventory's imageVms). */
  kind: MachineKind;
  name: string;
  env: string;
  role: string;
  image: string;
  service?: string;
  version?: string;
  /** 1-based position within its group. */
  index: number;
  /** Where provider libvirt puts it: a named hypervisor, or by the group's placement. */
  hypervisor?: string;
  placement?: Placement;
}

export interface Lab {
  paths: LabPaths;
  config: LabConfig;
  /** Every host the environments can run (count, or max of a min/max group). */
  hosts: DeclaredHost[];
  /** The VM each image is built as (`lab image build`): named after the image; kickstart templates see env "images", role "image". */
  imageHosts: DeclaredHost[];
}

/** Environment hosts and image builds: every name the server gives a kickstart to. */
export function allHosts(lab: Lab): DeclaredHost[] {
  return [...lab.hosts, ...lab.imageHosts];
}

/** What kickstart templates see as an image VM's env (host.env): no environment of the lab may take the name. */
export const IMAGE_ENV = 'images';

export interface LoadOptions {
  /** Check that the ISO of these images exists (true: all images). */
  requireIsos?: boolean | string[];
}

/** The size of a group when all of it runs (its count, or its max), or at its minimum (its count, or its min). */
export function groupSize(g: GroupConfig, at: 'all' | 'min' = 'all'): number {
  return g.count ?? (at === 'all' ? g.max : g.min) ?? 0;
}

export function hostName(env: string, role: string, index: number): string {
  return `${env}-${role}-${index}`;
}

// The package's own entry, so a lab folder anywhere can `import { defineLab } from 'lab'`.
// From src/ (under tsx) the sources' own entry, else the built one.
const selfEntry = import.meta.url.endsWith('.ts') ? path.join(packageRoot, 'src', 'index.ts') : path.join(packageRoot, 'dist', 'index.js');
// jiti by require: imported from an ES module, its CommonJS build is scanned for exports on every start (10 ms).
const require = createRequire(import.meta.url);

/** Load a TypeScript module of the lab folder (environments.ts, a service.ts); its default export. */
export async function importLabModule(file: string, where: string): Promise<unknown> {
  const { createJiti } = require('jiti') as typeof import('jiti');
  const jiti = createJiti(import.meta.url, {
    alias: { lab: selfEntry },
    moduleCache: false,
    // Transpiled once per content (jiti keys its cache by the source's hash): an unchanged environments.ts or service.ts is not compiled again.
    fsCache: path.join(cacheRoot(), 'jiti'),
    interopDefault: true,
  });
  try {
    const mod = await jiti.import<unknown>(file, { default: true });
    return mod;
  } catch (e) {
    const first = messageOf(e).split('\n').find((l) => l.trim()) ?? 'unknown error';
    throw new UsageError(`${where}: cannot be loaded: ${first}`);
  }
}

/** environments.ts run and checked against the schema (then kept: see cache.ts). */
async function validated(paths: LabPaths, source: string, where: string): Promise<LabConfig> {
  const raw = await importLabModule(paths.config, where);
  if (raw === undefined || raw === null || typeof raw !== 'object') {
    throw new UsageError(`${where}: expected \`export default defineLab({...})\``);
  }
  const { labSchema } = await import('./schema.js');
  const parsed = labSchema.safeParse(raw);
  if (!parsed.success) {
    // An unknown key usually explains a missing one beside it (a typo): report it first.
    const issues = [...parsed.error.issues].sort((a, b) => Number(b.code === 'unrecognized_keys') - Number(a.code === 'unrecognized_keys'));
    const first = issues[0]!;
    const more = issues.length > 1 ? ` (and ${issues.length - 1} more)` : '';
    throw new UsageError(`${where}: ${fieldPath(first.path)}: ${issueText(first)}${more}`);
  }
  keepValue(paths, 'environments', source, parsed.data);
  return parsed.data;
}

export async function loadLab(dir: string, opts: LoadOptions = {}): Promise<Lab> {
  const paths = labPaths(dir);
  if (!existsSync(paths.config)) {
    throw new UsageError(
      `${paths.config}: no such file: ${paths.dir} is not a lab folder`,
      `create one with \`lab init ${dir}\`, or point at one with --lab DIR`,
    );
  }
  const where = shown(paths, paths.config);
  const source = readFileSync(paths.config, 'utf8');
  const config = cachedValue<LabConfig>(paths, 'environments', source) ?? (await validated(paths, source, where));
  const fail = (field: string, msg: string): never => {
    throw new UsageError(`${where}: ${field}: ${msg}`);
  };

  const cidr = parseCidr(config.network.cidr);
  if (!inCidr(config.network.gateway, cidr)) {
    fail('network.gateway', `${config.network.gateway} is not a host address of ${config.network.cidr}`);
  }

  // Without a hypervisors field a libvirt lab has one, on this machine: "local".
  const hypervisors = config.hypervisors ?? { local: {} };
  const placed = PROVIDERS[config.provider].hypervisors === true;
  const takers = PROVIDER_NAMES.filter((n) => PROVIDERS[n].hypervisors).map((n) => `'${n}'`).join(', ');
  if (config.hypervisors !== undefined && !placed) fail('hypervisors', `hypervisors are for provider ${takers} (provider is '${config.provider}')`);
  if (placed && config.network.mode !== 'bridge') {
    fail('network.mode', `provider '${config.provider}' puts guests on each hypervisor's bridge: expected mode 'bridge'`);
  }
  if (config.hypervisors !== undefined && Object.keys(config.hypervisors).length === 0) fail('hypervisors', 'expected at least one hypervisor, or no hypervisors field (then qemu:///system on this machine)');

  const wantIso = (name: string) =>
    opts.requireIsos === true || (Array.isArray(opts.requireIsos) && opts.requireIsos.includes(name));
  for (const [name, image] of Object.entries(config.images)) {
    checkImage(paths, name, image, wantIso(name), fail);
  }

  const hosts: DeclaredHost[] = [];
  for (const [env, environment] of Object.entries(config.environments)) {
    const roles = new Set<string>();
    environment.groups.forEach((g, i) => {
      const at = `environments.${env}.groups[${i}]`;
      if (roles.has(g.role)) fail(`${at}.role`, `role "${g.role}" appears twice in environment ${env}`);
      roles.add(g.role);
      if (!(g.image in config.images)) {
        fail(`${at}.image`, `no image "${g.image}"; images are: ${Object.keys(config.images).join(', ') || 'none'}`);
      }
      const hasRange = g.min !== undefined || g.max !== undefined;
      if (g.count !== undefined && hasRange) fail(at, 'expected either count or min and max, not both');
      if (g.count === undefined && !hasRange) fail(at, 'expected count, or min and max');
      if (hasRange && (g.min === undefined || g.max === undefined)) fail(at, 'expected both min and max');
      if (hasRange && g.min! > g.max!) fail(`${at}.min`, `min ${g.min} is above max ${g.max}`);
      if (g.hypervisor !== undefined && (!placed || !Object.hasOwn(hypervisors, g.hypervisor))) {
        fail(`${at}.hypervisor`, !placed ? `hypervisors are for provider ${takers}` : `no hypervisor "${g.hypervisor}"; hypervisors are: ${Object.keys(hypervisors).join(', ')}`);
      }
      if (g.version !== undefined && g.service === undefined) fail(`${at}.version`, 'a version needs a service');
      if (g.service !== undefined && !existsSync(path.join(paths.services, g.service))) {
        fail(`${at}.service`, `no service "${g.service}": expected a folder ${shown(paths, path.join(paths.services, g.service))}`);
      }
      for (let n = 1; n <= groupSize(g); n++) {
        const name = hostName(env, g.role, n);
        if (name.length > 63) fail(`${at}.role`, `host name ${name} is longer than 63 characters`);
        hosts.push({ kind: 'host', name, env, role: g.role, image: g.image, service: g.service, version: g.version, index: n, hypervisor: g.hypervisor, placement: g.placement });
      }
    });
  }
  const seen = new Set<string>();
  for (const h of hosts) {
    // env "a-b" role "c" and env "a" role "b-c" would both make a-b-c-1.
    if (seen.has(h.name)) fail(`environments.${h.env}`, `host name ${h.name} is declared twice; rename an environment or role`);
    seen.add(h.name);
  }
  const imageHosts: DeclaredHost[] = Object.keys(config.images).map((name) => ({ kind: 'image' as const, name, env: IMAGE_ENV, role: 'image', image: name, index: 1, placement: 'spread' as const }));
  for (const h of imageHosts) if (seen.has(h.name)) fail(`images.${h.name}`, `image name ${h.name} is also a host name; rename the image`);
  if (IMAGE_ENV in config.environments) fail(`environments.${IMAGE_ENV}`, `"${IMAGE_ENV}" is reserved for image builds; rename the environment`);
  const capacity = cidr.last - cidr.first; // the gateway takes one
  if (config.network.mode === 'bridge' && hosts.length + imageHosts.length > capacity) {
    fail('network.cidr', `${config.network.cidr} has room for ${capacity} hosts but the lab declares ${hosts.length + imageHosts.length} (images included)`);
  }
  return { paths, config, hosts, imageHosts };
}

function checkImage(
  paths: LabPaths,
  name: string,
  image: ImageConfig,
  wantIso: boolean,
  fail: (field: string, msg: string) => never,
): void {
  const at = `images.${name}`;
  const ks = path.resolve(paths.dir, image.kickstart);
  if (!existsSync(ks)) fail(`${at}.kickstart`, `${image.kickstart} does not exist`);
  if (DISTROS[image.distro].needsIso && image.iso === undefined) {
    fail(`${at}.iso`, `a ${image.distro} image needs the path of its installer ISO`);
  }
  if (wantIso && image.iso !== undefined) {
    const iso = path.resolve(paths.dir, image.iso);
    try {
      accessSync(iso, constants.R_OK);
    } catch {
      fail(`${at}.iso`, `${image.iso} does not exist or cannot be read; put the installer image there`);
    }
  }
}

/** The declared host of that name, or a usage error listing what exists. */
export function declaredHost(lab: Lab, name: string): DeclaredHost {
  const h = allHosts(lab).find((x) => x.name === name);
  if (!h) {
    const names = lab.hosts.map((x) => x.name);
    const list = names.length > 12 ? `${names.slice(0, 12).join(', ')}, ...` : names.join(', ');
    throw new UsageError(`no host "${name}" in ${shown(lab.paths, lab.paths.config)}; declared hosts: ${list || 'none'}`);
  }
  return h;
}
