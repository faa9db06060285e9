import type { Command } from 'commander';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { leasesFor, offlineServing } from '../kickstart/hosts.js';
import { allHosts } from '../config/load.js';
import { pxeTree } from '../kickstart/pxe.js';
import { openLab } from './common.js';
import { print } from './output.js';

export function register(program: Command): void {
  program
    .command('pxe')
    .description('render pxe/ templates into a TFTP-ready folder (pxelinux.cfg/01-<mac> per host, default, iPXE scripts)')
    .requiredOption('--out <dir>', 'the TFTP root to write to')
    .action(async (opts: { out: string }, cmd: Command) => {
      const { lab, inventory } = await openLab(cmd);
      const leases = await leasesFor(lab, inventory, allHosts(lab));
      const files = pxeTree(lab, leases, offlineServing(lab));
      for (const f of files) {
        const to = path.join(opts.out, f.path);
        await mkdir(path.dirname(to), { recursive: true });
        await writeFile(to, f.content);
      }
      print(`wrote ${files.length} PXE files to ${opts.out}`);
    });
}
