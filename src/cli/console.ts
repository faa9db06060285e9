import type { Command } from 'commander';
import { allHosts } from '../config/load.js';
import { providerFor } from '../providers/index.js';
import { followConsole } from '../providers/follow.js';
import { UsageError } from '../errors.js';
import { interruptSignal } from '../util/wait.js';
import { openLab } from './common.js';
import { print } from './output.js';
import { printable } from '../providers/console.js';
import { attachConsole } from '../providers/attach.js';

export function register(program: Command): void {
  program
    .command('console <vm>')
    .description("attach to a running VM's serial console (an image's or a host's; detach with Ctrl-]), or print a stopped one's; --follow prints it read-only until the VM stops or Ctrl-C")
    .option('--follow', 'print what it shows, read-only, until the VM stops')
    .action(async (vm: string, o: { follow?: boolean }, cmd: Command) => {
      const { lab } = await openLab(cmd);
      const names = allHosts(lab).map((h) => h.name);
      if (!names.includes(vm)) throw new UsageError(`no VM "${vm}" in environments.ts; VMs: ${names.join(', ')}`);
      const provider = await providerFor(lab);
      try {
        const state = (await provider.info(vm)).state;
        if (state === 'missing') throw new UsageError(`${vm}: no such VM (not built or started yet)`, 'see `lab image list` and `lab env status`');
        if (!o.follow && state === 'running') {
          if (!provider.consoleAttach) throw new UsageError(`${vm}: provider ${provider.name} gives no console to type into`, `\`lab console ${vm} --follow\` prints it read-only`);
          const how = await provider.consoleAttach(vm);
          const why = await attachConsole(vm, how, { input: process.stdin, output: process.stdout, say: (l) => process.stderr.write(`${l}\n`) });
          process.stderr.write(`\n${vm}: ${why}\n`);
          return;
        }
        if (!o.follow) {
          // Stopped: what it showed when it ran.
          process.stderr.write(`${vm}: ${state}: its console as it last showed\n`);
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
