import type { Command } from 'commander';
import { interruptSignal } from '../util/wait.js';
import { existsSync, readFileSync } from 'node:fs';
import { runMonitor } from '../monitor/loop.js';
import { DEFAULT_POLICY, REPLACE_FREE } from '../monitor/policy.js';
import { backoffs } from '../monitor/status.js';
import { claimPidfile, monitorFiles, runningPid, startDaemon, stopDaemon } from '../monitor/daemon.js';
import { environment } from '../env/plan.js';
import { UsageError } from '../errors.js';
import { DEFAULT_PARALLEL, openLab, labDir, intOption, numberOption } from './common.js';
import { labPaths } from '../project/paths.js';
import { Inventory } from '../inventory/store.js';
import { print, printJson } from './output.js';

interface MonitorFlags {
  interval: number;
  high: number;
  low: number;
  sustain: number;
  cooldown: number;
  unhealthyAfter: number;
  backoff: number;
  bootDeadline: number;
  dryRun?: boolean;
  daemon?: boolean;
  stop?: boolean;
  status?: boolean;
  json?: boolean;
}

/** The daemon gets the same settings, spelled out. */
function daemonArgs(o: MonitorFlags): string[] {
  return [
    ['--interval', o.interval],
    ['--high', o.high],
    ['--low', o.low],
    ['--sustain', o.sustain],
    ['--cooldown', o.cooldown],
    ['--unhealthy-after', o.unhealthyAfter],
    ['--backoff', o.backoff],
    ['--boot-deadline', o.bootDeadline],
  ]
    .flatMap(([k, v]) => [String(k), String(v)])
    .concat(o.dryRun ? ['--dry-run'] : []);
}

export function register(program: Command): void {
  program
    .command('monitor <env>')
    .description('watch load and health of an environment; scale its min/max groups and replace failed hosts (logs JSON lines)')
    .option('--interval <s>', 'seconds between cycles', intOption('--interval', 1, 3600), 15)
    .option('--high <load>', 'mean load per CPU above which a group grows', numberOption('--high', 0, 100), DEFAULT_POLICY.high)
    .option('--low <load>', 'mean load per CPU below which a group shrinks', numberOption('--low', 0, 100), DEFAULT_POLICY.low)
    .option('--sustain <n>', 'intervals the load must stay beyond a mark', intOption('--sustain', 1, 1000), DEFAULT_POLICY.sustain)
    .option('--cooldown <s>', 'seconds without a load-driven change after one', intOption('--cooldown', 0, 86_400), DEFAULT_POLICY.cooldownMs / 1000)
    .option('--unhealthy-after <n>', 'failed health checks in a row before a host is replaced', intOption('--unhealthy-after', 1, 1000), DEFAULT_POLICY.unhealthyAfter)
    .option('--backoff <s>', `seconds to wait before replacing a host again once ${REPLACE_FREE} replacements in a row have not brought it back healthy (doubling each time)`, intOption('--backoff', 1, 86_400), DEFAULT_POLICY.backoffMs / 1000)
    .option('--boot-deadline <s>', 'seconds a started host may take to call back before it counts as lost', intOption('--boot-deadline', 5, 86_400), 300)
    .option('--dry-run', 'decide and log, change nothing')
    .option('--daemon', 'run detached: pidfile and log under inventory/')
    .option('--stop', 'stop the daemon of this environment')
    .option('--status', 'is the daemon running; its members and last decisions')
    .option('--json', 'with --status: print as JSON')
    .action(async (env: string, o: MonitorFlags, cmd: Command) => {
      // --stop and --status work from the lab's files alone: a broken environments.ts must not keep a daemon from being stopped.
      const paths = labPaths(labDir(cmd));
      const files = monitorFiles(paths, env);
      if (o.stop) {
        const pid = await stopDaemon(paths, env);
        return print(pid ? `monitor of ${env}: stopped (pid ${pid})` : `monitor of ${env}: not running`);
      }
      if (o.status) {
        const pid = runningPid(paths, env);
        const rec = (await new Inventory(paths).read()).monitors?.[env];
        const lines = existsSync(files.log) ? readFileSync(files.log, 'utf8').trim().split('\n') : [];
        const decisions = lines.filter((l) => l.includes('"event":"decision"')).slice(-5).map((l) => JSON.parse(l) as Record<string, unknown>);
        const backingOff = rec ? backoffs(rec) : [];
        const status = { env, running: pid !== undefined, pid, members: rec?.members ?? [], live: rec?.live ?? [], lastCycle: rec?.lastCycle, log: files.log, backoff: backingOff, lastDecisions: decisions };
        if (o.json) return printJson(status);
        print(`monitor of ${env}: ${pid ? `running (pid ${pid})` : 'not running'}; last cycle ${rec?.lastCycle ?? 'never'}`);
        print(`members: ${status.members.join(', ') || 'none'}; live: ${status.live.join(', ') || 'none'}`);
        for (const b of backingOff) print(`backing off: ${b.host} replaced ${b.replaced} times in a row without coming back healthy; next try at ${b.nextTry}`);
        for (const d of decisions) print(`  ${String(d.time)} ${String(d.group)} ${String(d.action)}${d.host ? ` ${String(d.host)}` : ''}: ${String(d.reason)}`);
        return;
      }
      const { lab } = await openLab(cmd);
      environment(lab, env);
      if (o.low >= o.high) throw new UsageError(`--low ${o.low} must be below --high ${o.high}`);
      if (o.daemon) {
        const pid = await startDaemon(paths, env, daemonArgs(o));
        return print(`monitor of ${env}: running (pid ${pid}); log ${files.log}; stop with \`lab monitor ${env} --stop\``);
      }
      // Foreground, or the daemon itself: one monitor per environment.
      claimPidfile(paths, env);
      const signal = interruptSignal();
      await runMonitor(lab.paths.dir, env, {
        intervalMs: o.interval * 1000,
        policy: { high: o.high, low: o.low, sustain: o.sustain, cooldownMs: o.cooldown * 1000, unhealthyAfter: o.unhealthyAfter, backoffMs: o.backoff * 1000 },
        dryRun: o.dryRun === true,
        bootDeadlineMs: o.bootDeadline * 1000,
        timeouts: { parallel: DEFAULT_PARALLEL, connectTimeoutMs: 10_000, commandTimeoutMs: 60_000 },
        log: (entry) => process.stdout.write(`${JSON.stringify(entry)}\n`),
        signal,
      });
    });
}
