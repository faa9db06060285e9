import { closeSync, existsSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createOnce } from '../util/files.js';
import { spawn } from 'node:child_process';
import { waitUntil } from '../util/wait.js';
import { isRunning, runsAs } from '../util/process.js';
import type { LabPaths } from '../project/paths.js';
import { LabError, UsageError, messageOf } from '../errors.js';

/** Where the daemon of an environment keeps its pid and its log (JSON lines). */
export function monitorFiles(paths: LabPaths, env: string): { pid: string; log: string } {
  return { pid: paths.monitorPid(env), log: paths.monitorLog(env) };
}

/** The pid of the running monitor of this env; a stale pidfile is removed. */
export function runningPid(paths: LabPaths, env: string): number | undefined {
  const file = monitorFiles(paths, env).pid;
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, 'utf8').trim());
  // Left by a monitor killed outright, its number may be another process's now (runsAs): that one is not the monitor, nor sent its SIGTERM.
  const monitorOf = (args: string[]) => {
    const at = args.indexOf('monitor');
    return at >= 0 && args.includes(env, at + 1);
  };
  if (runsAs(pid, monitorOf)) return pid;
  rmSync(file, { force: true });
  return undefined;
}

/** Claim the pidfile for this process (one monitor per env); released when it exits. */
export function claimPidfile(paths: LabPaths, env: string): void {
  const other = runningPid(paths, env);
  if (other && other !== process.pid) throw new UsageError(`the monitor of ${env} runs already (pid ${other})`, `lab monitor ${env} --stop`);
  const file = monitorFiles(paths, env).pid;
  // Never seen part-written by a reader (which would take it for stale); only one monitor wins.
  let created: boolean;
  try {
    created = createOnce(file, `${process.pid}\n`, 0o644);
  } catch (e) {
    throw new LabError(`cannot write ${file}: ${messageOf(e)}`);
  }
  if (!created && other !== process.pid) throw new UsageError(`the monitor of ${env} runs already (it just started)`, `lab monitor ${env} --stop`);
  process.once('exit', () => {
    if (existsSync(file) && readFileSync(file, 'utf8').trim() === String(process.pid)) rmSync(file, { force: true });
  });
}

/** Start `lab monitor <env> args...` detached, its output appended to the log; returns its pid once it runs. */
export async function startDaemon(paths: LabPaths, env: string, args: string[]): Promise<number> {
  const other = runningPid(paths, env);
  if (other) throw new UsageError(`the monitor of ${env} runs already (pid ${other})`, `lab monitor ${env} --stop`);
  const files = monitorFiles(paths, env);
  const out = openSync(files.log, 'a');
  const child = spawn(process.execPath, [process.argv[1]!, '--lab', paths.dir, 'monitor', env, ...args], {
    detached: true,
    stdio: ['ignore', out, out],
    env: { ...process.env, LAB_MONITOR_DAEMON: '1' },
  });
  closeSync(out);
  let exited: number | null | undefined;
  child.on('exit', (code) => (exited = code));
  child.unref();
  const started = await waitUntil(10_000, () => (runningPid(paths, env) === child.pid ? true : exited !== undefined ? false : undefined), { everyMs: 100 });
  if (started) return child.pid!;
  const tail = existsSync(files.log) ? readFileSync(files.log, 'utf8').trim().split('\n').slice(-3).join(' | ') : '';
  throw new LabError(`the monitor of ${env} did not start${tail ? `: ${tail}` : ''}`, { hint: `see ${files.log}` });
}

/** SIGTERM, then wait for it to finish its cycle and exit. */
export async function stopDaemon(paths: LabPaths, env: string, deadlineMs = 120_000): Promise<number | undefined> {
  const pid = runningPid(paths, env);
  if (!pid) return undefined;
  process.kill(pid, 'SIGTERM');
  if (!(await waitUntil(deadlineMs, () => (isRunning(pid) ? undefined : true), { everyMs: 100 }))) {
    throw new LabError(`the monitor of ${env} (pid ${pid}) did not stop within ${deadlineMs / 1000} s`);
  }
  rmSync(monitorFiles(paths, env).pid, { force: true });
  return pid;
}
