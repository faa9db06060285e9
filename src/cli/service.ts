import path from 'node:path';
import type { Command } from 'commander';
import { serviceNames } from '../project/services.js';
import type { HostResult } from '../deploy/run.js';
import { ExitCode, UsageError } from '../errors.js';
import { labPaths } from '../project/paths.js';
import { DEFAULT_PARALLEL, openLab, intOption } from './common.js';
import { labDirOf } from './argv.js';
import { print, printJson, table } from './output.js';

/**
 * `lab <service> <op>`: one command per folder of services/ with a
 * service.ts. The folder is found before the command line is parsed (the
 * --lab option is read from it) so `lab --help` lists the lab's services.
 */

interface OpFlags {
  env?: string;
  role?: string;
  hosts?: string;
  version?: string;
  via?: string;
  parallel: number;
  connectTimeout: number;
  timeout: number;
  json?: boolean;
}

/** The commands made for the lab folder's services (completion leaves them out: it reads them at completion time). */
export const serviceCommands = new WeakSet<Command>();

/** Service folders named like a built-in command: not runnable, reported by `lab services`. */
const shadowed: string[] = [];

export function registerServices(program: Command, argv: string[], builtIn: string[]): void {
  const taken = new Set(builtIn);
  for (const name of serviceNames(labPaths(labDirOf(argv)).services)) {
    if (taken.has(name)) {
      shadowed.push(name);
      continue;
    }
    const command = program
      .command(name)
      .description(`service ${name}: run one of its operations on its hosts (lab services lists them)`)
      .argument('<operation>', 'deploy, start, stop, test, or another the service defines')
      .option('--env <env>', 'only hosts of this environment')
      .option('--role <role>', "hosts of this role instead of the service's own")
      .option('--hosts <a,b>', 'exactly these hosts, whatever their role or last recorded state')
      .option('--version <version>', "the version to deploy or expect (default: the group's, else the newest)")
      .option('--via <role>', "send the operation's HTTP requests through the live host of this role (a load balancer)")
      .option('--parallel <n>', 'hosts at once', intOption('--parallel', 1, 1024), DEFAULT_PARALLEL)
      .option('--connect-timeout <s>', 'seconds to get an SSH connection', intOption('--connect-timeout', 1, 600), 10)
      .option('--timeout <s>', 'seconds each command may run', intOption('--timeout', 1, 86_400), 300)
      .option('--json', 'print the results as JSON')
      .action((op: string, o: OpFlags, cmd: Command) => runCommand(name, op, o, cmd));
    serviceCommands.add(command);
  }
}

async function runCommand(name: string, op: string, o: OpFlags, cmd: Command): Promise<void> {
  const { lab, inventory } = await openLab(cmd);
  const [{ loadService }, { runOperation, failedResults }] = await Promise.all([import('../deploy/services.js'), import('../deploy/run.js')]);
  const service = await loadService(lab, name);
  const hosts = o.hosts?.split(',').map((h) => h.trim()).filter(Boolean);
  if (o.hosts !== undefined && !hosts?.length) throw new UsageError('--hosts: expected host names separated by commas');
  const started = performance.now();
  const progress = hostProgress(`${name} ${op}`, o.json === true);
  const results = await runOperation({
    lab,
    inventory,
    service,
    operation: op,
    selection: { env: o.env, role: o.role, hosts, version: o.version },
    parallel: o.parallel,
    via: o.via,
    connectTimeoutMs: o.connectTimeout * 1000,
    commandTimeoutMs: o.timeout * 1000,
    onStart: progress.start,
    onResult: progress.result,
  });
  progress.end();
  const seconds = (performance.now() - started) / 1000;
  const failed = failedResults(results);
  if (o.json) {
    printJson({ service: name, operation: op, ok: failed.length === 0, seconds: Number(seconds.toFixed(3)), hosts: results });
  } else {
    print(summary(results, seconds));
  }
  if (failed.length) process.exitCode = ExitCode.failed;
}

const mark: Record<HostResult['outcome'], string> = {
  ok: 'OK',
  failed: 'FAILED',
  unreachable: 'UNREACHABLE',
  refused: 'REFUSED',
  timeout: 'TIMEOUT',
  skipped: 'SKIPPED',
};

/** Each host's output as one block, printed when the host finishes. */
function hostBlock(r: HostResult): string {
  const head = `== ${r.host} ${mark[r.outcome]} (${(r.ms / 1000).toFixed(1)} s)`;
  const lines = r.output.map((l) => `   ${l}`);
  if (r.detail && r.outcome !== 'ok') lines.push(`   ${r.outcome}: ${r.detail}`);
  return [head, ...lines].join('\n');
}

function summary(results: HostResult[], seconds: number): string {
  const rows = results.map((r) => [r.host, r.env, r.role, r.version, mark[r.outcome], r.outcome === 'skipped' ? undefined : `${(r.ms / 1000).toFixed(1)} s`, r.detail]);
  const count = (k: HostResult['outcome']) => results.filter((r) => r.outcome === k).length;
  const bad = results.length - count('ok') - count('skipped');
  const line = `${count('ok')} ok, ${bad} failed, ${count('skipped')} skipped, ${results.length} hosts in ${seconds.toFixed(1)} s`;
  return `\n${table(['HOST', 'ENV', 'ROLE', 'VERSION', 'RESULT', 'TIME', 'DETAIL'], rows)}\n${line}`;
}

/** Blocks on stdout as hosts finish; on a terminal, a running count on stderr. */
function hostProgress(label: string, json: boolean) {
  const tty = process.stderr.isTTY === true && !json;
  const running = new Set<string>();
  let done = 0;
  let bad = 0;
  const status = () => {
    if (!tty) return;
    const names = [...running].slice(0, 4).join(', ') + (running.size > 4 ? ', ...' : '');
    process.stderr.write(`\r\x1b[K${label}: ${done} done${bad ? ` (${bad} failed)` : ''}, ${running.size} running${names ? `: ${names}` : ''}`);
  };
  return {
    start(host: string) {
      running.add(host);
      status();
    },
    result(r: HostResult) {
      running.delete(r.host);
      if (r.outcome === 'skipped') return;
      done++;
      if (r.outcome !== 'ok') bad++;
      if (!json) {
        if (tty) process.stderr.write('\r\x1b[K');
        print(hostBlock(r));
      }
      status();
    },
    end() {
      if (tty) process.stderr.write('\r\x1b[K');
    },
  };
}

/** `lab services`: every service of the lab, its role, versions, operations and who runs it. */
export function registerServicesList(program: Command): void {
  program
    .command('services')
    .description('list the services of this lab and their operations')
    .option('--json', 'print as JSON')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const { lab } = await openLab(cmd);
      if (shadowed.length) {
        throw new UsageError(`${path.join('services', shadowed[0]!)}: "${shadowed[0]}" is also a lab command, so \`lab ${shadowed[0]} <op>\` cannot reach it; rename the service folder`);
      }
      const { serviceSummary } = await import('../deploy/services.js');
      const rows = [];
      for (const name of serviceNames(lab.paths.services)) {
        const s = await serviceSummary(lab, name);
        const groups = Object.entries(lab.config.environments).flatMap(([env, e]) =>
          e.groups.filter((g) => g.service === name).map((g) => `${env}/${g.role}${g.version ? `@${g.version}` : ''}`),
        );
        rows.push({ name, description: s.description ?? '', role: s.role, versions: s.versions, operations: s.operations, groups });
      }
      if (o.json) return printJson(rows);
      if (rows.length === 0) return print(`no services: add a folder with a service.ts, shell stages (stages/0-<name>/bootstrap.sh) or an Ansible playbook.yml under ${lab.paths.services}`);
      print(table(['SERVICE', 'ROLE', 'VERSIONS', 'OPERATIONS', 'GROUPS', 'DESCRIPTION'], rows.map((r) => [r.name, r.role, r.versions.join(' '), r.operations.join(' '), r.groups.join(' '), r.description])));
    });
}
