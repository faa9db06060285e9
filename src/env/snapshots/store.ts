import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { LabPaths } from '../../project/paths.js';
import type { HostRecord, Lease } from '../../inventory/types.js';
import { LabError, UsageError, messageOf } from '../../errors.js';
import { privateDir, writeFileAtomicSync } from '../../util/files.js';

/** One host as the snapshot caught it. */
export interface SnapshotHost {
  /** running: captured with its memory, restored running. stopped: its disk alone, restored stopped. */
  vm: 'running' | 'stopped';
  /** What the inventory knew of it then (keys, version, address, callbacks); absent for a VM that never called back. */
  record?: HostRecord;
  lease?: Lease;
}

/** An environment snapshot: inventory/snapshots/<env>/<name>.json; each VM holds the tag `tag`. */
export interface EnvSnapshot {
  version: 1;
  env: string;
  name: string;
  tag: string;
  /** ISO time. */
  taken: string;
  provider: string;
  hosts: Record<string, SnapshotHost>;
  /** Declared hosts with no VM then: a restore stops theirs. */
  absent: string[];
  /** The lab's MAC seed then: a restore into a cleared inventory keeps the lab's MACs. */
  macSeed?: string;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

export function checkSnapshotName(name: string): void {
  if (!NAME.test(name)) throw new UsageError(`snapshot name "${name}": letters, digits, '.', '_' and '-' only, starting with a letter or digit, at most 63`);
}

/** The tag each VM holds it under: lab's own, so a snapshot taken by hand is never touched. */
export const tagOf = (name: string) => `lab-${name}`;

const fileOf = (paths: LabPaths, env: string, name: string) => path.join(paths.snapshots(env), `${name}.json`);

export function snapshotExists(paths: LabPaths, env: string, name: string): boolean {
  return existsSync(fileOf(paths, env, name));
}

export function readSnapshot(paths: LabPaths, env: string, name: string): EnvSnapshot {
  checkSnapshotName(name);
  const file = fileOf(paths, env, name);
  if (!existsSync(file)) {
    const names = listSnapshots(paths, env).map((s) => s.name);
    throw new UsageError(`no snapshot "${name}" of environment ${env}; its snapshots: ${names.join(', ') || 'none'}`, names.length ? undefined : `take one with \`lab env snapshot ${env} <name>\``);
  }
  return parseSnapshot(readFileSync(file, 'utf8'), file);
}

function parseSnapshot(text: string, file: string): EnvSnapshot {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new LabError(`${file}: not JSON (${messageOf(e)})`);
  }
  const s = raw as Partial<EnvSnapshot>;
  const bad = (field: string) => new LabError(`${file}: ${field} is missing or of the wrong type`, { hint: 'the file was changed by hand: restore it from a copy, or remove the snapshot with --rm' });
  if (s?.version !== 1) throw bad('version');
  for (const f of ['env', 'name', 'tag', 'taken', 'provider'] as const) if (typeof s[f] !== 'string') throw bad(f);
  if (!s.hosts || typeof s.hosts !== 'object') throw bad('hosts');
  for (const [host, h] of Object.entries(s.hosts)) if (h?.vm !== 'running' && h?.vm !== 'stopped') throw bad(`hosts.${host}.vm`);
  if (!Array.isArray(s.absent)) throw bad('absent');
  return s as EnvSnapshot;
}

export function writeSnapshot(paths: LabPaths, snap: EnvSnapshot): void {
  privateDir(paths.snapshots(snap.env));
  writeFileAtomicSync(fileOf(paths, snap.env, snap.name), `${JSON.stringify(snap, null, 2)}\n`);
}

export function removeSnapshotFile(paths: LabPaths, env: string, name: string): void {
  rmSync(fileOf(paths, env, name), { force: true });
}

/** The environment's snapshots, oldest first; a file that does not parse is listed by name with its error. */
export function listSnapshots(paths: LabPaths, env: string): (EnvSnapshot | { name: string; error: string })[] {
  const dir = paths.snapshots(env);
  if (!existsSync(dir)) return [];
  const out = readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => {
      const file = path.join(dir, f);
      try {
        return parseSnapshot(readFileSync(file, 'utf8'), file);
      } catch (e) {
        return { name: f.slice(0, -5), error: messageOf(e) };
      }
    });
  return out.sort((a, b) => ('taken' in a ? a.taken : '').localeCompare('taken' in b ? b.taken : ''));
}
