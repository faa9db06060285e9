import type { Command } from 'commander';
import { interruptSignal } from '../util/wait.js';
import { createInterface } from 'node:readline/promises';
import { buildImage, ipArg } from '../hostbuilder/build.js';
import { cloneHost } from '../hostbuilder/clone.js';
import { providerFor } from '../providers/index.js';
import { progressText } from '../inventory/stages.js';
import { imageRows, type ImageRow } from '../hostbuilder/list.js';
import { UsageError } from '../errors.js';
import { openLab, intOption } from './common.js';
import { ago, print, printJson, table } from './output.js';
import { stepProgress } from './progress.js';

async function confirm(question: string): Promise<boolean> {
  if (!process.stdin.isTTY) return false;
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  const answer = await rl.question(`${question} [y/N] `);
  rl.close();
  return /^y(es)?$/i.test(answer.trim());
}

export function register(program: Command): void {
  const image = program.command('image').description('the hostbuilder: build VMs from installer images and kickstarts, and manage them');

  image
    .command('build [name]')
    .description('install an image VM from its kickstart and wait for its callback (no-op when built, unless --rebuild)')
    .option('--all', 'every image in environments.ts')
    .option('--rebuild', 'build again even when the image is installed')
    .option('--follow', "print the VM's serial console as it installs")
    .action(async (name: string | undefined, opts: { all?: boolean; rebuild?: boolean; follow?: boolean }, cmd: Command) => {
      if (!name && !opts.all) throw new UsageError('which image? give its name, or --all');
      const { lab, inventory } = await openLab(cmd, { requireIsos: name ? [name] : true });
      const provider = await providerFor(lab);
      const names = opts.all ? Object.keys(lab.config.images) : [name!];
      const signal = interruptSignal();
      for (const n of names) {
        const progress = stepProgress(`build ${n}`);
        const t = performance.now();
        try {
          const r = await buildImage(lab, inventory, provider, n, {
            rebuild: opts.rebuild,
            events: progress,
            signal,
            log: (l) => process.stderr.write(`${l}\n`),
            console: opts.follow ? (l) => progress.aside(`${n} console: ${l}`) : undefined,
          });
          progress.end();
          print(r === 'exists' ? `${n}: installed already (--rebuild to build again)` : `${n}: installed in ${((performance.now() - t) / 1000).toFixed(1)} s`);
        } catch (e) {
          progress.end();
          throw e;
        }
      }
    });

  image
    .command('list')
    .description('images, their install state and their VMs')
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const { lab, inventory } = await openLab(cmd);
      const rows = await imageRows(lab, inventory, await providerFor(lab));
      if (opts.json) return printJson(rows);
      const hv = rows.some((r) => r.hypervisor);
      const head = ['IMAGE', 'DISTRO', 'INSTALL', 'STATE', 'VM', ...(hv ? ['HYPERVISOR'] : []), 'ADDRESS', 'CALLBACK', 'STAGE', 'TIME', 'REASON'];
      const took = (r: ImageRow) => (r.seconds !== undefined ? `${r.seconds} s` : r.started ? `${ago(r.started)} (running)` : undefined);
      print(table(head, rows.map((r) => [r.name, r.distro, r.install, r.state, r.vm, ...(hv ? [r.hypervisor] : []), r.address, r.lastCallback && ago(r.lastCallback), progressText(r.stage), took(r), r.reason])));
    });

  image
    .command('start <name>')
    .description('boot a VM from its disk, headless')
    .action(async (name: string, _o: object, cmd: Command) => {
      const { lab } = await openLab(cmd);
      await (await providerFor(lab)).start(name, { boot: { kind: 'disk' } });
      print(`${name}: started`);
    });

  image
    .command('stop <name>')
    .description('ACPI power-off, then a hard power-off after the deadline')
    .option('--deadline <s>', 'seconds to wait for the guest to power off', intOption('--deadline', 0, 3600), 60)
    .action(async (name: string, opts: { deadline: number }, cmd: Command) => {
      const { lab } = await openLab(cmd);
      const how = await (await providerFor(lab)).stop(name, opts.deadline * 1000);
      print(`${name}: ${how === 'already' ? 'was not running' : how === 'graceful' ? 'powered off' : `forced off after ${opts.deadline} s`}`);
    });

  image
    .command('del <name>')
    .description('delete a VM and its disks (asks first unless --force)')
    .option('-f, --force', 'do not ask')
    .option('--release', 'drop its lease too (MAC and address): the next build leases anew, in the current network.cidr')
    .action(async (name: string, opts: { force?: boolean; release?: boolean }, cmd: Command) => {
      const { lab, inventory } = await openLab(cmd);
      const provider = await providerFor(lab);
      const exists = (await provider.info(name)).state !== 'missing' || Boolean((await provider.strays?.())?.includes(name));
      const leased = Object.hasOwn((await inventory.read()).leases, name);
      // Without a VM there is still a lease to release (one of an older network.cidr).
      if (!exists && !(opts.release && leased)) throw new UsageError(`no VM "${name}"`, 'see `lab image list`, or `lab env status <env>`');
      if (exists && !opts.force && !(await confirm(`delete the VM ${name} and its disks?`))) {
        throw new UsageError(`not deleted: ${name}`, 'confirm on a terminal, or pass --force');
      }
      if (exists) await provider.delete(name);
      await inventory.update((d) => {
        delete d.hosts[name];
        delete d.imageVms[name];
        delete d.images[name];
        if (opts.release) delete d.leases[name];
      });
      print(`${name}: ${exists ? 'deleted' : 'no VM'}${opts.release ? ', its lease released' : ''}`);
    });

  image
    .command('clone <source> <name>')
    .description('a linked clone of a stopped VM, booting with its own name, MAC and host key')
    .action(async (source: string, name: string, _o: object, cmd: Command) => {
      const { lab, inventory } = await openLab(cmd);
      const lease = await cloneHost(lab, inventory, await providerFor(lab), source, name);
      print(`${name}: cloned from ${source} (MAC ${lease.mac}${ipArg(lab, name, lease) ? `, address ${lease.ip}` : ''}); start it with \`lab image start ${name}\``);
    });

  image
    .command('export <image>')
    .description('a built image as a disk others can use: a flattened qcow2 (libvirt, OpenStack, Proxmox), a VMDK, an OVA (VirtualBox, VMware), raw or a Vagrant box, booting by itself')
    .requiredOption('--out <file>', 'the file to write')
    .option('--format <format>', 'qcow2, vmdk, ova, raw, or box (Vagrant, libvirt)', 'qcow2')
    .action(async (name: string, o: { out: string; format: string }, cmd: Command) => {
      const { lab, inventory } = await openLab(cmd);
      const { exportImage, parseExportFormat } = await import('../hostbuilder/export.js');
      const r = await exportImage(lab, inventory, await providerFor(lab), name, parseExportFormat(o.format), o.out);
      print(`${name}: exported to ${r.file} (${r.format}, ${(r.bytes / 1048576).toFixed(1)} MiB)`);
    });
}
