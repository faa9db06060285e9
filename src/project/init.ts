import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { privateDir } from '../util/files.js';
import path from 'node:path';
import { UsageError } from '../errors.js';
import { labPaths } from './paths.js';
import { packageRoot } from './root.js';

const SCAFFOLD = ['environments.ts', 'kickstart', 'pxe', 'services', 'iso/README.md'];

const GITIGNORE = `# lab's runtime state: database, boot log, SSH key, callback token, VM disks
inventory/
# installer images: large, and licensed separately
iso/*
!iso/README.md
`;

/** The user's .gitignore with lab's lines added where missing; theirs kept as they were. */
function mergeIgnore(file: string): string {
  if (!existsSync(file)) return GITIGNORE;
  const mine = readFileSync(file, 'utf8');
  const have = new Set(mine.split('\n').map((l) => l.trim()));
  const missing = GITIGNORE.split('\n').filter((l) => l.trim() && !l.startsWith('#') && !have.has(l.trim()));
  if (missing.length === 0) return mine;
  return `${mine}${mine.endsWith('\n') || mine === '' ? '' : '\n'}# added by lab init: runtime state and installer images stay out of git\n${missing.join('\n')}\n`;
}

/** What a provider changes in the scaffold's environments.ts (VirtualBox: a network inside the host-only range it allows). */
export type ScaffoldEdit = (source: string) => string;

/** Scaffold a lab folder, like \`vagrant init\`; refuses to overwrite one unless force. */
export function initLab(dir: string, force = false, provider?: { name: string; scaffold?: ScaffoldEdit }): string[] {
  const paths = labPaths(dir);
  if (existsSync(paths.config) && !force) {
    throw new UsageError(`${paths.config} already exists: ${paths.dir} is a lab folder already`, 'pass --force to overwrite its scaffold files');
  }
  mkdirSync(paths.dir, { recursive: true });
  const written: string[] = [];
  for (const item of SCAFFOLD) {
    const from = path.join(packageRoot, item);
    const to = path.join(paths.dir, item);
    mkdirSync(path.dirname(to), { recursive: true });
    cpSync(from, to, { recursive: true, force: true });
    written.push(item);
  }
  if (provider) {
    const source = readFileSync(paths.config, 'utf8').replace("provider: 'qemu'", `provider: '${provider.name}'`);
    writeFileSync(paths.config, provider.scaffold ? provider.scaffold(source) : source);
  }
  writeFileSync(path.join(paths.dir, '.gitignore'), mergeIgnore(path.join(paths.dir, '.gitignore')));
  privateDir(paths.inventory);
  written.push('.gitignore', 'inventory/');
  return written;
}
