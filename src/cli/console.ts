import type { Command } from 'commander';
import { allHosts } from '../config/load.js';
import { providerFor } from '../providers/index.js';
import { followConsole } from '../providers/follow.js';
import { UsageError } from '../errors.js';
import { interruptSignal } from '../util/wait.js';
import { openLab } from './common.js';
import { print } from './output.js';
import { printable } from '../providers/console.js';

export function register(program: Command): void {
  program
    .command('console <vm>')
    .description("print a VM's serial console so far (an image's or a host's); --follow keeps printing until the VM stops or Ctrl-C")
    .option('--follow', 'keep printing what it shows, until the VM stops')
    .action(async (vm: string, o: { follow?: boolean }, cmd: Command) => {
      const { lab } = await openLab(cmd);
      const names = allHosts(lab).map((h) => h.name);
      if (!names.includes(vm)) throw new UsageError(`no VM "${vm}" in environments.ts; VMs: ${names.join(', ')}`);
      const provider = providerFor(lab);
      try {
        const state = (await provider.info(vm)).state;
        if (state === 'missing') throw new UsageError(`${vm}: no such VM (not built or started yet)`, 'see `lab image list` and `lab env status`');
        if (!o.follow) {
          const text = await provider.console(vm);
          if (text) print(text.split(/\r?\n/).map(printable).join('\n').replace(/\n$/, ''));
          return;
        }
        const follower = followConsole(provider, vm, (l) => print(l), { untilStopped: true });
        interruptSignal().addEventListener('abort', () => void follower.stop());
        await follower.done;
      } finally {
        await provider.close?.();
      }
    });
}
