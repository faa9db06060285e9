import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { libvirtProvider } from '../providers/libvirt/index.js';
import { providerKind } from '../providers/index.js';
import { allFacts } from '../providers/libvirt/facts.js';
import type { Lab } from '../config/load.js';
import { openLab, intOption } from './common.js';
import { context, startOptions } from './env.js';
import { interruptSignal } from '../util/wait.js';
import { evacuate } from '../env/evacuate.js';
import { ExitCode } from '../errors.js';
import { print, printJson, table } from './output.js';

function needLibvirt(lab: Lab): void {
  if (!providerKind(lab).hypervisors) throw new UsageError(`lab hypervisor: the lab's provider is '${lab.config.provider}'; hypervisors are for provider 'libvirt' (environments.ts)`);
}

export function register(program: Command): void {
  const hv = program.command('hypervisor').description("the hypervisors a libvirt lab places its VMs on");

  hv.command('list')
    .description('each hypervisor: reachable or not, libvirt version, KVM, capacity, the VMs lab placed there')
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const { lab } = await openLab(cmd);
      needLibvirt(lab);
      const p = await libvirtProvider(lab);
      try {
        const facts = await allFacts(p);
        if (opts.json) return printJson(facts);
        print(
          table(
            ['HYPERVISOR', 'URI', 'REACHABLE', 'LIBVIRT', 'ACCEL', 'CPUS', 'MEMORY MIB', 'VMS'],
            facts.map((f) => [
              f.drained ? `${f.name} (drained)` : f.name,
              f.uri,
              f.reachable ? 'yes' : `no: ${f.reason}`,
              f.libvirt,
              f.reachable ? (f.accel === 'kvm' ? 'kvm' : 'tcg') : undefined,
              `${f.used.cpus}/${f.capacity.cpus}`,
              `${f.used.memoryMiB}/${f.capacity.memoryMiB}`,
              f.vms.map((v) => `${v.name} (${v.state})`).join(', ') || '-',
            ]),
          ),
        );
      } finally {
        p.close();
      }
    });

  hv.command('drain <hypervisor>')
    .description('move every VM off it (live migration where both ends allow, else stop and recreate) and place nothing new there')
    .option('--deadline <s>', 'seconds a recreated host may take to call back', intOption('--deadline', 5, 86_400), 300)
    .option('--json', 'print the result as JSON')
    .action(async (name: string, o: { deadline: number; json?: boolean }, cmd: Command) => {
      const { lab, inventory } = await openLab(cmd);
      needLibvirt(lab);
      const p = await libvirtProvider(lab);
      p.setDrained(name, true);
      const on = new Set(p.state.records().filter((r) => r.hypervisor === name).map((r) => r.spec.name));
      const c = await context(lab, inventory, interruptSignal(), p);
      try {
        const moved = await evacuate(c, [...lab.imageHosts, ...lab.hosts].filter((h) => on.has(h.name)), startOptions({ parallel: 1, deadline: o.deadline, connectTimeout: 10, timeout: 300 }));
        if (o.json) printJson(moved);
        else {
          print(moved.length ? table(['VM', 'FROM', 'TO', 'HOW', 'DETAIL'], moved.map((m) => [m.host, m.from, m.to, m.how, m.detail])) : `${name}: no VMs of this lab there`);
          print(`${name}: drained: nothing new is placed there until \`lab hypervisor undrain ${name}\``);
        }
        if (moved.some((m) => m.how === 'failed')) process.exitCode = ExitCode.failed;
      } finally {
        p.close();
      }
    });

  hv.command('undrain <hypervisor>')
    .description('place VMs there again (the VMs moved away stay where they are)')
    .action(async (name: string, _o: object, cmd: Command) => {
      const { lab } = await openLab(cmd);
      needLibvirt(lab);
      (await libvirtProvider(lab)).setDrained(name, false);
      print(`${name}: new VMs may be placed there again`);
    });
}
