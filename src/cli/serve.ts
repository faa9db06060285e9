import type { Command } from 'commander';
import { startServer } from '../server/serve.js';
import { openLab, intOption } from './common.js';
import { print } from './output.js';
import { storageError } from '../util/files.js';
import { onInterrupt } from '../util/wait.js';

export function register(program: Command): void {
  program
    .command('serve')
    .description('run the embedded HTTP server: kickstarts, PXE files, boot callbacks, the inventory API')
    .option('--bind <address>', 'address to listen on (default: the lab gateway; 127.0.0.1 with user networking)')
    .option('--port <port>', 'port to listen on (default: network.serverPort; 0 picks a free one)', intOption('--port', 0, 65535))
    .option('--public-url <url>', 'base URL guests use to reach this server, when it is not the default')
    .option('--undeclared <n>', 'record callbacks of up to n hosts not declared in environments.ts (each with its own token: lab hosts token <name>)', intOption('--undeclared', 0, 10_000), 0)
    .action(async (opts: { bind?: string; port?: number; publicUrl?: string; undeclared: number }, cmd: Command) => {
      const { lab } = await openLab(cmd);
      const log = (line: string) => print(`${new Date().toISOString()} ${line}`);
      let fatal: unknown;
      let stop: (why: string) => void = () => undefined;
      const server = await startServer(lab, {
        ...opts,
        log,
        warmUp: true,
        onStorageFailure: (e) => {
          fatal ??= e;
          stop('the inventory cannot be written');
        },
      });
      print(`lab ${lab.config.name}: serving on ${server.url} (guests use ${server.guestUrl}); dashboard: ${server.url}/`);
      await new Promise<void>((resolve) => {
        stop = (why: string) => {
          log(`${why}: stopping`);
          // Whatever clients do, the server is gone within a second.
          setTimeout(resolve, 1000).unref();
          void server.close().then(resolve);
        };
        onInterrupt(stop);
      });
      // Nothing a client left open keeps the process: it ends with the exit code main() sets.
      setTimeout(() => process.exit(), 200).unref();
      if (fatal) throw storageError(lab.paths.db, fatal);
    });
}
