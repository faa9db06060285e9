import type { Command } from 'commander';
import { initLab } from '../project/init.js';
import { print } from './output.js';

export function register(program: Command): void {
  program
    .command('init [dir]')
    .description('scaffold a lab folder: environments.ts, kickstart/, pxe/, services/hello, iso/')
    .option('-f, --force', 'overwrite the scaffold files of an existing lab folder')
    .action((dir: string | undefined, opts: { force?: boolean }, cmd: Command) => {
      const target = dir ?? ((cmd.optsWithGlobals() as { lab?: string }).lab ?? '.');
      const written = initLab(target, opts.force);
      print(`lab folder ready in ${target}: ${written.join(', ')}`);
      print(`next: edit ${target}/environments.ts, then \`lab check --lab ${target}\` and \`lab serve --lab ${target}\``);
    });
}
