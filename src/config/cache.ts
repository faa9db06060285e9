import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { LabConfig } from './schema.js';
import type { LabPaths } from '../project/paths.js';
import { writeFileAtomicSync } from '../util/files.js';

// Set by scripts/bundle.mjs: a hash of lab's sources, so a cache made by another build of lab (another schema) is never read.
declare const __LAB_BUILD__: string | undefined;
const build = typeof __LAB_BUILD__ === 'string' ? __LAB_BUILD__ : undefined;

/**
 * environments.ts as validated last time, kept per content in
 * inventory/config-cache.json: a command on an unchanged lab neither runs
 * jiti nor the schema (about 20 ms of every start). Only for a file whose
 * one import is 'lab' (what else it imports could change unseen) and whose
 * value survives JSON; only in a bundled build (from src/ the build has no
 * identity to key on).
 */
function keyOf(source: string): string | undefined {
  if (!build) return undefined;
  const specifiers = [...source.matchAll(/\b(?:from|import|require)\s*\(?\s*['"]([^'"]+)['"]/g)].map((m) => m[1]);
  if (specifiers.some((s) => s !== 'lab')) return undefined;
  return createHash('sha256').update(build).update('\0').update(source).digest('hex');
}

const fileOf = (paths: LabPaths) => path.join(paths.inventory, 'config-cache.json');

export function cachedConfig(paths: LabPaths, source: string): LabConfig | undefined {
  const key = keyOf(source);
  if (!key || !existsSync(fileOf(paths))) return undefined;
  try {
    const kept = JSON.parse(readFileSync(fileOf(paths), 'utf8')) as { key?: string; config?: LabConfig };
    return kept.key === key ? kept.config : undefined;
  } catch {
    return undefined; // torn or foreign: validated again, and rewritten
  }
}

export function keepConfig(paths: LabPaths, source: string, config: LabConfig): void {
  const key = keyOf(source);
  if (!key || !existsSync(paths.inventory) || !isDeepStrictEqual(JSON.parse(JSON.stringify(config)), config)) return;
  try {
    writeFileAtomicSync(fileOf(paths), JSON.stringify({ key, config }));
  } catch {
    // A read-only lab folder: validated each time, as before.
  }
}
