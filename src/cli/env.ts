import type { Command } from 'commander';
import { interruptSignal } from '../util/wait.js';
import { providerFor } from '../providers/index.js';
import { hostLines } from './host-lines.js';
import type { EnvContext } from '../env/hosts.js';
import type { StartOptions, StartReport } from '../env/start.js';
import type { Provider } from '../providers/types.js';
import { envStatus, envList, type HostStatus } from '../env/status.js';
import { environment } from '../env/plan.js';
import { ExitCode } from '../errors.js';
import { DEFAULT_PARALLEL, openLab, intOption } from './common.js';
import { ago, print, printJson, table } from './output.js';
import { registerSnapshots } from './env-snapshot.js';

interface StartFlags {
  follow?: boolean;
  parallel: number;
  deadline: number;
  connectTimeout: number;
  timeout: number;
  json?: boolean;
}

function statusTable(rows: HostStatus[], results?: StartReport): string {
  if (rows.length === 0) return 'no hosts';
  // The hypervisor column only where VMs have one (provider libvirt).
  const hv = rows.some((r) => r.hypervisor) ? ['HYPERVISOR'] : [];
  return table(
    ['HOST', 'ROLE', ...hv, 'VM', 'STATE', 'ADDRESS', 'LIVE', 'SERVICE', 'VERSION', 'LAST CALLBACK', ...(results ? ['RESULT'] : [])],
    rows.map((r) => [r.host, r.role, ...(hv.length ? [r.hypervisor] : []), r.vm, r.state, r.address, r.live ? 'yes' : 'no', r.service, r.version, ago(r.lastCallback), ...(results ? [resultText(r.host, results)] : [])]),
  );
}

/** What a start did to one host: its VM, then its service. */
function resultText(host: string, results: StartReport): string | undefined {
  const up = results.hosts.find((h) => h.host === host);
  const svc = results.services.get(host);
  if (up?.outcome === 'failed') return `failed: ${up.detail}`;
  const parts: string[] = [];
  if (up) parts.push(up.outcome === 'up' ? 'booted' : 'running');
  if (svc && svc.outcome !== 'ok') parts.push(`${svc.operation} ${svc.outcome}: ${svc.detail}`);
  else if (svc?.operation === 'reconfigure') parts.push(svc.detail ?? 'reconfigured');
  else if (svc) parts.push(svc.detail === 'unchanged' ? 'service unchanged' : 'service deployed and started');
  return parts.join(', ') || undefined;
}

export async function context(lab: EnvContext['lab'], inventory: EnvContext['inventory'], signal: AbortSignal, provider?: Provider, follow = false): Promise<EnvContext> {
  const lines = hostLines();
  return {
    lab,
    inventory,
    provider: provider ?? (await providerFor(lab)),
    signal,
    say: (who, what) => lines.say(who, what),
    ...(follow ? { console: (who: string, line: string) => lines.aside(`${who} console: ${line}`) } : {}),
  };
}

/** What an `lab env <command> <env>` acts in: the lab opened, the environment checked to exist, its context. */
export async function envCommand(cmd: Command, env: string, follow = false): Promise<EnvContext> {
  const { lab, inventory } = await openLab(cmd);
  environment(lab, env);
  return context(lab, inventory, interruptSignal(), undefined, follow);
}

function failedCount(r: StartReport): number {
  const hosts = r.hosts.filter((h) => h.outcome === 'failed').map((h) => h.host);
  const services = [...r.services.values()].filter((s) => s.outcome !== 'ok').map((s) => s.host);
  return new Set([...hosts, ...services]).size;
}

export const startOptions = (o: Pick<StartFlags, 'parallel' | 'deadline' | 'connectTimeout' | 'timeout'>): StartOptions => ({
  hostParallel: o.parallel,
  bootDeadlineMs: o.deadline * 1000,
  parallel: DEFAULT_PARALLEL,
  connectTimeoutMs: o.connectTimeout * 1000,
  commandTimeoutMs: o.timeout * 1000,
});

export function register(program: Command): void {
  const env = program.command('env').description('the env manager: start and stop whole environments, group by group');

  const withStartOptions = (c: Command) =>
    c
      .option('--parallel <n>', 'VMs brought up at once', intOption('--parallel', 1, 64), 4)
      .option('--deadline <s>', 'seconds a booting host may take to call back', intOption('--deadline', 5, 86_400), 300)
      .option('--connect-timeout <s>', 'seconds to get an SSH connection', intOption('--connect-timeout', 1, 600), 10)
      .option('--timeout <s>', 'seconds each service command may run', intOption('--timeout', 1, 86_400), 300)
      .option('--follow', 'print each VM\'s serial console as it installs or boots')
      .option('--json', 'print the result as JSON');

  const report = async (c: EnvContext, name: string, r: StartReport, json?: boolean) => {
    const rows = await envStatus(c.lab, c.inventory, c.provider, name);
    const failed = failedCount(r);
    if (json) printJson({ env: name, ok: failed === 0, hosts: rows, started: r.hosts, services: [...r.services.values()] });
    else {
      print(statusTable(rows, r));
      print(`${rows.filter((x) => x.live).length} live of ${rows.length} declared${failed ? `; ${failed} failed` : ''}`);
      if (r.servedHere) print('no `lab serve` was running: later boots of these hosts are not recorded until one runs');
    }
    if (failed) process.exitCode = ExitCode.failed;
  };

  for (const [command, mode, what] of [
    ['start-all', 'all', 'every group at its count or max'],
    ['start-min', 'min', 'every group at its count or min'],
  ] as const) {
    withStartOptions(
      env
        .command(`${command} <env>`)
        .description(`build what is missing and start ${what}: images, VMs, callbacks, services at their versions, tests`),
    ).action(async (name: string, o: StartFlags, cmd: Command) => {
      const c = await envCommand(cmd, name, o.follow);
      const { startEnv } = await import('../env/start.js');
      await report(c, name, await startEnv(c, name, mode, startOptions(o)), o.json);
    });
  }

  withStartOptions(env.command('start-worker <env> <host>').description('(re)start one host of the environment and its service; its peers are reconfigured')).action(
    async (name: string, host: string, o: StartFlags, cmd: Command) => {
      const c = await envCommand(cmd, name, o.follow);
      const { startWorker } = await import('../env/start.js');
      await report(c, name, await startWorker(c, name, host, startOptions(o)), o.json);
    },
  );

  env
    .command('stop <env>')
    .description('power off every host of the environment gracefully (ACPI), forcing after the deadline')
    .option('--deadline <s>', 'seconds each host may take to power off', intOption('--deadline', 0, 3600), 60)
    .option('--parallel <n>', 'hosts stopped at once', intOption('--parallel', 1, 256), 16)
    .option('--json', 'print the result as JSON')
    .action(async (name: string, o: { deadline: number; parallel: number; json?: boolean }, cmd: Command) => {
      const c = await envCommand(cmd, name);
      const { stopEnv } = await import('../env/stop.js');
      const results = await stopEnv(c, name, { parallel: o.parallel, deadlineMs: o.deadline * 1000 });
      const failed = results.filter((r) => r.outcome === 'failed');
      if (o.json) printJson(results);
      else print(table(['HOST', 'RESULT', 'DETAIL'], results.map((r) => [r.host, r.outcome, r.detail])));
      if (failed.length) process.exitCode = ExitCode.failed;
    });

  env
    .command('trust <env>')
    .description("give every live host of an environment with trust: true the environment's key, its peers pinned (start-all does it)")
    .option('--parallel <n>', 'hosts at once', intOption('--parallel', 1, 256), 16)
    .option('--json', 'print the result as JSON')
    .action(async (name: string, o: { parallel: number; json?: boolean }, cmd: Command) => {
      const { lab, inventory } = await openLab(cmd);
      const { trustEnvironment } = await import('../env/trust.js');
      const results = await trustEnvironment(lab, inventory, name, { parallel: o.parallel, connectTimeoutMs: 10_000, commandTimeoutMs: 60_000 });
      if (o.json) printJson(results);
      else print(table(['HOST', 'RESULT', 'DETAIL'], results.map((r) => [r.host, r.ok ? 'ok' : 'failed', r.detail])));
      if (results.some((r) => !r.ok)) process.exitCode = ExitCode.failed;
    });

  env
    .command('status <env>')
    .description('each host of the environment: role, VM state, address, live or not, service version, last callback')
    .option('--json', 'print as JSON')
    .action(async (name: string, o: { json?: boolean }, cmd: Command) => {
      const { lab, inventory } = await openLab(cmd);
      environment(lab, name);
      const rows = await envStatus(lab, inventory, await providerFor(lab), name);
      o.json ? printJson(rows) : print(statusTable(rows));
    });

  registerSnapshots(env);

  env
    .command('list')
    .description('the environments: their groups, and how many hosts run and are live')
    .option('--json', 'print as JSON')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const { lab, inventory } = await openLab(cmd);
      const rows = await envList(lab, inventory, await providerFor(lab));
      o.json ? printJson(rows) : print(table(['ENV', 'GROUPS', 'DECLARED', 'RUNNING', 'LIVE'], rows.map((r) => [r.env, r.groups, r.declared, r.running, r.live])));
    });
}
