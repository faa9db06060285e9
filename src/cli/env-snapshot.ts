import type { Command } from 'commander';
import { ExitCode } from '../errors.js';
import { DEFAULT_PARALLEL, intOption } from './common.js';
import { ago, print, printJson, table } from './output.js';
import { envCommand } from './env.js';

/** lab env snapshot | restore | snapshots: whole environments kept and brought back. */
export function registerSnapshots(env: Command): void {
  env
    .command('snapshot <env> <name>')
    .description('capture every host of the environment at one moment (running ones paused together, memory and disk), with what the inventory knows of them')
    .option('--rm', 'remove the snapshot instead, from every VM and the inventory')
    .option('--parallel <n>', 'VMs captured at once', intOption('--parallel', 1, 64), 4)
    .option('--json', 'print the result as JSON')
    .action(async (name: string, snapshot: string, o: { rm?: boolean; parallel: number; json?: boolean }, cmd: Command) => {
      const c = await envCommand(cmd, name);
      if (o.rm) {
        const { removeSnapshot } = await import('../env/snapshots/list.js');
        const removed = await removeSnapshot(c, name, snapshot);
        o.json ? printJson({ env: name, snapshot, removedFrom: removed }) : print(`snapshot ${snapshot} of ${name} removed${removed.length ? ` (from ${removed.join(', ')})` : ''}`);
        return;
      }
      const { takeSnapshot } = await import('../env/snapshots/take.js');
      const s = await takeSnapshot(c, name, snapshot, { parallel: o.parallel });
      if (o.json) return printJson(s);
      const hosts = Object.entries(s.hosts);
      print(table(['HOST', 'CAPTURED', 'SERVICE VERSION'], hosts.map(([n, h]) => [n, h.vm, h.record?.serviceVersion])));
      print(`snapshot ${snapshot} of ${name}: ${hosts.length} hosts${s.absent.length ? `; without a VM then: ${s.absent.join(', ')}` : ''}`);
    });

  env
    .command('restore <env> <name>')
    .description('bring the environment back to a snapshot: its hosts restored, the others stopped, keys and versions as they were, the balancer told, tests run')
    .option('--connect-timeout <s>', 'seconds to get an SSH connection', intOption('--connect-timeout', 1, 600), 10)
    .option('--timeout <s>', 'seconds each service command may run', intOption('--timeout', 1, 86_400), 300)
    .option('--json', 'print the result as JSON')
    .action(async (name: string, snapshot: string, o: { connectTimeout: number; timeout: number; json?: boolean }, cmd: Command) => {
      const c = await envCommand(cmd, name);
      const { restoreSnapshot } = await import('../env/snapshots/restore.js');
      const r = await restoreSnapshot(c, name, snapshot, { parallel: DEFAULT_PARALLEL, connectTimeoutMs: o.connectTimeout * 1000, commandTimeoutMs: o.timeout * 1000 });
      const failed = [...r.hosts.filter((h) => h.outcome === 'failed').map((h) => h.host), ...r.services.filter((s) => s.outcome !== 'ok').map((s) => s.host)];
      if (o.json) printJson({ env: name, snapshot, ok: failed.length === 0, hosts: r.hosts, services: r.services });
      else {
        const last = (host: string) => r.services.filter((s) => s.host === host && s.operation !== 'clock').at(-1);
        print(
          table(
            ['HOST', 'RESTORED', 'SERVICE VERSION', 'RESULT'],
            r.hosts.map((h) => {
              const s = last(h.host);
              return [h.host, h.outcome, r.snapshot.hosts[h.host]?.record?.serviceVersion, h.detail ?? (s ? `${s.operation} ${s.outcome}${s.detail ? `: ${s.detail}` : ''}` : undefined)];
            }),
          ),
        );
        print(`${name} restored to ${snapshot} (taken ${ago(r.snapshot.taken)})${failed.length ? `; ${new Set(failed).size} failed` : ''}`);
      }
      if (failed.length) process.exitCode = ExitCode.failed;
    });

  env
    .command('snapshots <env>')
    .description("the environment's snapshots: when, which hosts ran, their versions, and whether every VM still holds it")
    .option('--json', 'print as JSON')
    .action(async (name: string, o: { json?: boolean }, cmd: Command) => {
      const c = await envCommand(cmd, name);
      const { snapshotRows } = await import('../env/snapshots/list.js');
      const rows = await snapshotRows(c, name);
      if (o.json) return printJson(rows);
      print(rows.length === 0 ? `no snapshots of ${name}` : table(['NAME', 'TAKEN', 'RUNNING', 'STOPPED', 'VERSIONS', 'STATE'], rows.map((r) => [r.name, ago(r.taken), r.running.join(' '), r.stopped.join(' '), r.versions.join(' '), r.broken ? `broken: ${r.broken}` : 'ok'])));
    });
}
