import type { Command } from 'commander';
import { renderKickstart, writeKickstarts, offlineServing } from '../kickstart/hosts.js';
import { UsageError } from '../errors.js';
import { openLab } from './common.js';
import { print } from './output.js';

export function register(program: Command): void {
  program
    .command('kickstart [host]')
    .description("print the kickstart a host gets from the server, or write every host's with --all --out DIR")
    .option('--all', 'every host declared in environments.ts')
    .option('--out <dir>', 'with --all: the folder to write <host>.cfg files to (mode 0600: they hold the callback token)')
    .action(async (host: string | undefined, opts: { all?: boolean; out?: string }, cmd: Command) => {
      if (opts.all && host) throw new UsageError('give a host name or --all, not both');
      if (!opts.all && !host) throw new UsageError('which host? give its name, or --all --out DIR');
      if (opts.all && !opts.out) throw new UsageError('--all needs --out DIR');
      const { lab, inventory } = await openLab(cmd);
      const serving = offlineServing(lab);
      if (host) return print(await renderKickstart(lab, inventory, host, serving));
      const files = await writeKickstarts(lab, inventory, serving, opts.out!);
      print(`wrote ${files.length} kickstarts to ${opts.out}`);
    });
}
