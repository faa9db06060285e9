import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { LabPaths } from './paths.js';
import { privateDir, writeFileAtomicSync } from '../util/files.js';

// Set by scripts/bundle.mjs: a hash of lab's sources, so a value checked by another build of lab (another schema) is never read.
declare const __LAB_BUILD__: string | undefined;
const build = typeof __LAB_BUILD__ === 'string' ? __LAB_BUILD__ : undefined;

/**
 * What lab read from a TypeScript file of the lab folder (environments.ts,
 * a service.ts) and checked, kept per content in inventory/checked/<what>.json:
 * a command on an unchanged lab neither runs jiti nor the schema (about 20 ms
 * a file, of every start). Only for a file whose one import is 'lab' (what
 * else it imports could change unseen) and a value that survives JSON; only
 * in a bundled build (from src/ the build has no identity to key on).
 */
function keyOf(source: string): string | undefined {
  if (!build) return undefined;
  const specifiers = [...source.matchAll(/\b(?:from|import|require)\s*\(?\s*['"]([^'"]+)['"]/g)].map((m) => m[1]);
  if (specifiers.some((s) => s !== 'lab')) return undefined;
  return createHash('sha256').update(build).update('\0').update(source).digest('hex');
}

const fileOf = (paths: LabPaths, what: string) => path.join(paths.inventory, 'checked', `${what}.json`);

export function cachedValue<T>(paths: LabPaths, what: string, source: string): T | undefined {
  const key = keyOf(source);
  if (!key || !existsSync(fileOf(paths, what))) return undefined;
  try {
    const kept = JSON.parse(readFileSync(fileOf(paths, what), 'utf8')) as { key?: string; value?: T };
    return kept.key === key ? kept.value : undefined;
  } catch {
    return undefined; // torn or foreign: checked again, and rewritten
  }
}

export function keepValue<T>(paths: LabPaths, what: string, source: string, value: T): void {
  const key = keyOf(source);
  if (!key || !existsSync(paths.inventory) || !isDeepStrictEqual(JSON.parse(JSON.stringify(value)), value)) return;
  try {
    privateDir(path.dirname(fileOf(paths, what)));
    writeFileAtomicSync(fileOf(paths, what), JSON.stringify({ key, value }));
  } catch {
    // A read-only lab folder: checked each time, as before.
  }
}
