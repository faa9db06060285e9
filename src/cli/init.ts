import type { Command } from 'commander';
import { initLab } from '../project/init.js';
import { PROVIDERS, PROVIDER_NAMES, type ProviderName } from '../providers/index.js';
import { UsageError } from '../errors.js';
import { print } from './output.js';

export function register(program: Command): void {
  program
    .command('init [dir]')
    .description('scaffold a lab folder: environments.ts, kickstart/, pxe/, services/hello, iso/')
    .option('-f, --force', 'overwrite the scaffold files of an existing lab folder')
    .option('--provider <name>', `the hypervisor: ${PROVIDER_NAMES.join(' or ')} (qemu)`)
    .action((dir: string | undefined, opts: { force?: boolean; provider?: string }, cmd: Command) => {
      const target = dir ?? ((cmd.optsWithGlobals() as { lab?: string }).lab ?? '.');
      if (opts.provider !== undefined && !(PROVIDER_NAMES as string[]).includes(opts.provider)) {
        throw new UsageError(`--provider: no provider "${opts.provider}"; providers: ${PROVIDER_NAMES.join(', ')}`);
      }
      const kind = opts.provider === undefined ? undefined : PROVIDERS[opts.provider as ProviderName];
      const written = initLab(target, opts.force, kind && { name: kind.name, scaffold: kind.scaffold });
      print(`lab folder ready in ${target}: ${written.join(', ')}`);
      print(`next: edit ${target}/environments.ts, then \`lab check --lab ${target}\` and \`lab serve --lab ${target}\``);
    });
}
