import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { currentHosts } from '../hosts/manager.js';
import { sshable, writeSshFiles } from '../hosts/sshconfig.js';
import { UsageError } from '../errors.js';
import { loadExeca } from '../util/exec.js';
import { openLab } from './common.js';
import { print } from './output.js';

export function register(program: Command): void {
  program
    .command('ssh-config')
    .description('print an OpenSSH config for the live hosts, host keys pinned (use with ssh -F, scp -F)')
    .action(async (_o: object, cmd: Command) => {
      const { lab, inventory } = await openLab(cmd);
      const config = writeSshFiles(lab.paths, await currentHosts(inventory));
      process.stderr.write(`(also written to ${config}: ssh -F ${config} <host>)\n`);
      print(readFileSync(config, 'utf8'));
    });

  program
    .command('ssh <host> [command...]')
    .description('open a shell on a live host (or run a command), its host key pinned')
    .action(async (host: string, command: string[], _o: object, cmd: Command) => {
      const { lab, inventory } = await openLab(cmd);
      const live = sshable(await currentHosts(inventory));
      if (!live.some((h) => h.name === host)) {
        throw new UsageError(`no live host "${host}" with a recorded host key; live hosts: ${live.map((h) => h.name).join(', ') || 'none'}`, 'see `lab hosts list`, or `lab hosts filter` to refresh');
      }
      const config = writeSshFiles(lab.paths, live);
      const execa = await loadExeca();
      const r = await execa('ssh', ['-F', config, host, ...command], { stdio: 'inherit', reject: false });
      process.exitCode = r.exitCode ?? 1;
    });
}
