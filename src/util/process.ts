import { readFileSync } from 'node:fs';

/**
 * Whether a process runs: it exists (or exists under another user: EPERM)
 * and is not a zombie, one killed whose exit a parent has not collected
 * yet, and may never.
 */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}
