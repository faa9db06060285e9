import type { Command } from 'commander';
import { openLab } from './common.js';
import { print, printJson } from './output.js';

export function register(program: Command): void {
  program
    .command('check')
    .description('validate environments.ts, its templates and installer ISOs')
    .option('--images <names>', 'check the ISOs of these images only (comma-separated)')
    .option('--json', 'print the expanded lab as JSON')
    .action(async (opts: { images?: string; json?: boolean }, cmd: Command) => {
      const requireIsos = opts.images ? opts.images.split(',').map((s) => s.trim()) : true;
      const { lab } = await openLab(cmd, { requireIsos });
      if (opts.json) return printJson({ config: lab.config, hosts: lab.hosts });
      const envs = Object.entries(lab.config.environments).map(([name, e]) => `${name} (${e.groups.map((g) => g.role).join(', ')})`);
      print(
        `${lab.paths.config}: ok: ${Object.keys(lab.config.images).length} images, environments ${envs.join('; ')}, ${lab.hosts.length} hosts at most`,
      );
    });
}
