import { Option, type Command } from 'commander';
import { ansibleInventory } from '../hosts/ansible.js';
import { writeSshFiles } from '../hosts/sshconfig.js';
import { loggedHosts, currentHosts, filterHosts, resetHosts, clearHosts, DEFAULT_SWEEP } from '../hosts/manager.js';
import type { ProbeResult, SweepOptions } from '../hosts/probe.js';
import type { HostRecord } from '../inventory/types.js';
import { openLab, intOption } from './common.js';
import { rekey } from '../hosts/trust.js';
import { parseHostName } from '../inventory/values.js';
import { ensureSecrets, hostToken } from '../project/secrets.js';
import { UsageError } from '../errors.js';
import { ago, print, printJson, table } from './output.js';

function hostTable(hosts: HostRecord[]): string {
  if (hosts.length === 0) return 'no hosts';
  // The ALERT column shows only when there is something to say.
  const alert = hosts.some((h) => h.refusedKey);
  return table(
    ['NAME', 'ENV', 'ROLE', 'STATE', 'IP', 'MAC', 'LAST CALLBACK', 'BOOTS', ...(alert ? ['ALERT'] : [])],
    hosts.map((h) => [
      h.name,
      h.env,
      h.role,
      h.state,
      h.reach ? `${h.ip} (via ${h.reach.address}:${h.reach.port})` : h.ip,
      h.mac,
      ago(h.lastCallback),
      h.bootCount,
      ...(alert ? [h.refusedKey ? `host key changed ${ago(h.refusedKey.time)}: refused (lab hosts rekey ${h.name})` : ''] : []),
    ]),
  );
}

function sweepReport(results: ProbeResult[], seconds: number): string {
  const up = results.filter((r) => r.alive).length;
  const rows = results.map((r) => [r.alive ? 'up' : 'down', r.name, r.target, r.method, r.ms !== undefined ? `${r.ms.toFixed(1)} ms` : undefined]);
  const summary = `${up} up, ${results.length - up} down, ${results.length} probed in ${seconds.toFixed(2)} s`;
  return results.length ? `${table(['STATE', 'NAME', 'TARGET', 'PROBE', 'TIME'], rows)}\n${summary}` : 'no logged hosts to probe';
}

interface SweepFlags {
  json?: boolean;
  timeout: number;
  deadline: number;
  parallel: number;
}

function sweepOptions(o: SweepFlags): SweepOptions {
  return { timeoutMs: o.timeout, deadlineMs: o.deadline, concurrency: o.parallel };
}

function withSweepOptions(c: Command): Command {
  return c
    .option('--timeout <ms>', 'how long one host may take to answer', intOption('--timeout', 100, 60_000), DEFAULT_SWEEP.timeoutMs)
    .option('--deadline <ms>', 'one deadline for the whole sweep', intOption('--deadline', 100, 600_000), DEFAULT_SWEEP.deadlineMs)
    .option('--parallel <n>', 'probes in flight at once', intOption('--parallel', 1, 1024), DEFAULT_SWEEP.concurrency)
    .option('--json', 'print as JSON');
}

export function register(program: Command): void {
  const hosts = program.command('hosts').description('the host manager: which hosts called back, and which are alive');

  hosts
    .command('logged')
    .description('every host that ever called back')
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const { inventory } = await openLab(cmd);
      const list = await loggedHosts(inventory);
      opts.json ? printJson(list) : print(hostTable(list));
    });

  hosts
    .command('list')
    .description('the current hosts: those alive at the last filter (or that called back since)')
    .option('--json', 'print as JSON (same as --format json)')
    .addOption(new Option('--format <format>', 'table, json, or ansible (an inventory for ansible -i)').choices(['table', 'json', 'ansible']).default('table'))
    .action(async (opts: { json?: boolean; format: string }, cmd: Command) => {
      const { lab, inventory } = await openLab(cmd);
      const list = await currentHosts(inventory);
      if (opts.format === 'ansible') return print(ansibleInventory(list, writeSshFiles(lab.paths, list), lab.paths.dir));
      opts.json || opts.format === 'json' ? printJson(list) : print(hostTable(list));
    });

  for (const [name, description] of [
    ['filter', 'probe every logged host (ICMP, or SSH through a forwarded port); live ones become current, the others down'],
    ['reset', 'log again every host in inventory/booted.log, then filter'],
  ] as const) {
    withSweepOptions(hosts.command(name).description(description)).action(async (opts: SweepFlags, cmd: Command) => {
      const { lab, inventory } = await openLab(cmd);
      const start = performance.now();
      const results = name === 'filter' ? await filterHosts(inventory, sweepOptions(opts)) : await resetHosts(inventory, lab.paths, sweepOptions(opts));
      const seconds = (performance.now() - start) / 1000;
      opts.json ? printJson(results) : print(sweepReport(results, seconds));
    });
  }

  hosts
    .command('rekey <host>')
    .description("accept a host's new host key on purpose: the one it offered and was refused, or else the one its next callback brings")
    .option('--minutes <n>', 'with no refused key: how long the next callback may bring a new key', intOption('--minutes', 1, 7 * 24 * 60), 60)
    .action(async (host: string, opts: { minutes: number }, cmd: Command) => {
      const { inventory } = await openLab(cmd);
      const r = await rekey(inventory, host, opts.minutes);
      print(r.kind === 'accepted' ? `${host}: host key ${r.fingerprint} accepted and pinned` : `${host}: no refused key; its next callback until ${r.until} may bring a new one`);
    });

  hosts
    .command('token <host>')
    .description('the callback token of a host (for one made by hand: lab serve --undeclared); it lets that host, and only it, call back')
    .action(async (host: string, _o: object, cmd: Command) => {
      const { lab } = await openLab(cmd);
      const name = parseHostName(host);
      if (!name) throw new UsageError(`"${host}" is not a host name (lower-case letters, digits, dashes, dots)`);
      print(hostToken(ensureSecrets(lab.paths, lab.config.name).secret, name));
    });

  hosts
    .command('clear')
    .description('forget every host record (addresses and MACs stay leased; inventory/booted.log is kept for reset)')
    .action(async (_opts: object, cmd: Command) => {
      const { inventory } = await openLab(cmd);
      print(`forgot ${await clearHosts(inventory)} hosts`);
    });
}
