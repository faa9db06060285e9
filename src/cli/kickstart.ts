import type { Command } from 'commander';
import { renderKickstart, renderKickstartWith, writeKickstarts, offlineServing, leasesFor } from '../kickstart/hosts.js';
import { lintKickstart, lintTargets } from '../kickstart/lint.js';
import { hostContext } from '../kickstart/context.js';
import { allHosts, declaredHost } from '../config/load.js';
import { LabError, UsageError } from '../errors.js';
import { openLab, intOption } from './common.js';
import { allowInstall } from '../hosts/trust.js';
import { print } from './output.js';

export function register(program: Command): void {
  program
    .command('kickstart [host]')
    .description("print the kickstart a host gets from the server, or write every host's with --all --out DIR")
    .option('--all', 'every host declared in environments.ts')
    .option('--out <dir>', "with --all: the folder to write <host>.cfg files to (mode 0600: they hold the hosts' callback tokens)")
    .option('--lint', 'check that the kickstart is complete for an unattended install, instead of printing it')
    .option('--target <release>', "with --lint: the installer release to check against, as pykickstart's -v (CentOS: RHEL9, the default, or RHEL10)")
    .option('--allow', "open the host's install window: lab serve hands out its kickstart, and its next callback may bring a new host key")
    .option('--minutes <n>', 'with --allow: how long the window stays open', intOption('--minutes', 1, 7 * 24 * 60), 60)
    .action(async (host: string | undefined, opts: { all?: boolean; out?: string; lint?: boolean; target?: string; allow?: boolean; minutes: number }, cmd: Command) => {
      if (opts.all && host) throw new UsageError('give a host name or --all, not both');
      if (!opts.all && !host) throw new UsageError('which host? give its name, or --all --out DIR');
      if (opts.all && !opts.out && !opts.lint) throw new UsageError('--all needs --out DIR (or --lint)');
      const { lab, inventory } = await openLab(cmd);
      if (opts.allow) {
        if (!host) throw new UsageError('--allow: which host? give its name');
        const h = declaredHost(lab, host);
        const w = await allowInstall(inventory, h.name, opts.minutes);
        return print(`${h.name}: install window open until ${w.until}: its kickstart is served and its next callback may bring a new host key`);
      }
      const serving = offlineServing(lab);
      if (opts.lint) {
        const hosts = host ? [declaredHost(lab, host)] : allHosts(lab);
        const leases = await leasesFor(lab, inventory, hosts);
        let bad = 0;
        for (const h of hosts) {
          const text = renderKickstartWith(lab, h, leases.get(h.name)!, serving);
          const image = lab.config.images[h.image]!;
          const targets = lintTargets(image.distro);
          // A release only means something to the distros that have releases to check against.
          if (opts.target !== undefined && targets.length && !targets.includes(opts.target)) {
            throw new UsageError(`--target: ${image.distro} kickstarts are checked against ${targets.join(' or ')}, not "${opts.target}"`);
          }
          const problems = lintKickstart(text, image.distro, hostContext(lab, h, leases.get(h.name)!, serving).callback.url, targets.length ? opts.target : undefined);
          for (const p of problems) print(`${image.kickstart} (${h.name}): ${p.severity === 'warning' ? 'warning: ' : ''}${p.text}`);
          if (problems.some((p) => p.severity === 'error')) bad++;
        }
        if (bad) throw new LabError(`${bad} of ${hosts.length} kickstarts are not complete for an unattended install`);
        return print(`${hosts.length} kickstart${hosts.length === 1 ? '' : 's'} complete for an unattended install`);
      }
      if (host) return print(await renderKickstart(lab, inventory, host, serving));
      const files = await writeKickstarts(lab, inventory, serving, opts.out!);
      print(`wrote ${files.length} kickstarts to ${opts.out}`);
    });
}
