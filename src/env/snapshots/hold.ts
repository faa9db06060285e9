import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { LabPaths } from '../../project/paths.js';
import { LabError } from '../../errors.js';
import { privateDir, writeFileAtomicSync } from '../../util/files.js';
import { isRunning } from '../../util/process.js';

/** A snapshot or restore running on an environment: the monitor leaves it alone meanwhile, and a second one waits its turn. */
export interface Hold {
  pid: number;
  what: 'snapshot' | 'restore' | 'remove';
  name: string;
  since: string;
}

const holdFile = (paths: LabPaths, env: string) => path.join(paths.snapshots(env), '.busy');

/** The hold on the environment, if the process that took it still runs (one killed mid-way holds nothing). */
export function heldBy(paths: LabPaths, env: string): Hold | undefined {
  const file = holdFile(paths, env);
  if (!existsSync(file)) return undefined;
  try {
    const h = JSON.parse(readFileSync(file, 'utf8')) as Hold;
    return isRunning(h.pid) ? h : undefined;
  } catch {
    return undefined;
  }
}

/** What a hold is doing, for people: "restoring snapshot s1". */
export const holdText = (h: Hold) => `${{ snapshot: 'taking', restore: 'restoring', remove: 'removing' }[h.what]} snapshot "${h.name}"`;

export async function withHold<T>(paths: LabPaths, env: string, what: Hold['what'], name: string, fn: () => Promise<T>): Promise<T> {
  const other = heldBy(paths, env);
  if (other && other.pid !== process.pid) {
    throw new LabError(`environment ${env}: ${holdText(other)} (pid ${other.pid}, since ${other.since}); try again once it ends`);
  }
  privateDir(paths.snapshots(env));
  writeFileAtomicSync(holdFile(paths, env), JSON.stringify({ pid: process.pid, what, name, since: new Date().toISOString() } satisfies Hold));
  try {
    return await fn();
  } finally {
    rmSync(holdFile(paths, env), { force: true });
  }
}
