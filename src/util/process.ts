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

/**
 * Whether the process of a pidfile still runs, and is still the one that
 * wrote it: a pidfile outlives a process killed outright (SIGKILL, the OOM
 * killer, the machine going down), and its number may be another process's
 * by then, which must neither count nor be signalled. `is` looks at the
 * command line, where /proc shows it (elsewhere the pid is all there is).
 */
export function runsAs(pid: number, is: (args: string[]) => boolean): boolean {
  if (!Number.isInteger(pid) || pid <= 0 || !isRunning(pid)) return false;
  const args = commandLine(pid);
  return args === undefined || is(args);
}

/** Whether args hold `flag value`, the two side by side. */
export function hasArgs(args: string[], flag: string, value: string): boolean {
  return args.some((a, i) => a === flag && args[i + 1] === value);
}

/** A process's arguments, argv[0] first, as /proc has them; undefined where they cannot be read. */
function commandLine(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1);
  } catch {
    return undefined;
  }
}
