import { existsSync, linkSync, readFileSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { LabPaths } from '../../project/paths.js';
import { LabError } from '../../errors.js';
import { createOnce, privateDir } from '../../util/files.js';
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

/**
 * Run fn holding the environment. The hold is taken atomically (createOnce:
 * of two processes that start at once, exactly one gets it, the other is
 * refused); one left by a process that no longer runs is taken over. Taken
 * again by the process that holds it (a restore that takes a snapshot
 * first), it is the same hold, released by the outer one.
 */
export async function withHold<T>(paths: LabPaths, env: string, what: Hold['what'], name: string, fn: () => Promise<T>): Promise<T> {
  const file = holdFile(paths, env);
  privateDir(paths.snapshots(env));
  const mine = JSON.stringify({ pid: process.pid, what, name, since: new Date().toISOString() } satisfies Hold);
  for (let attempt = 0; !createOnce(file, mine, 0o600); attempt++) {
    const other = heldBy(paths, env);
    if (other?.pid === process.pid) return fn();
    if (other) throw new LabError(`environment ${env}: ${holdText(other)} (pid ${other.pid}, since ${other.since}); try again once it ends`);
    // A stale hold (its process is gone), or one released meanwhile: moved aside and taken again.
    if (attempt >= 3) throw new LabError(`environment ${env}: could not take its hold (${file}); try again`);
    removeStale(file);
  }
  try {
    return await fn();
  } finally {
    rmSync(file, { force: true });
  }
}

/**
 * Remove a hold whose process is gone. Renamed aside first, so that of two
 * processes that both found it stale only one removes anything; one that
 * finds a live hold there instead (taken meanwhile) puts it back.
 */
function removeStale(file: string): void {
  const aside = `${file}.${process.pid}.stale`;
  try {
    renameSync(file, aside);
  } catch {
    return; // gone already: released, or moved aside by another
  }
  try {
    const h = JSON.parse(readFileSync(aside, 'utf8')) as Hold;
    if (isRunning(h.pid)) linkSync(aside, file);
  } catch {
    // Unreadable: no hold. Or put back too late: a third process took the hold meanwhile, and holds it.
  } finally {
    rmSync(aside, { force: true });
  }
}
