import type { Command } from 'commander';
import { startServer } from '../server/serve.js';
import { openLab, intOption } from './common.js';
import { print } from './output.js';

export function register(program: Command): void {
  program
    .command('serve')
    .description('run the embedded HTTP server: kickstarts, PXE files, boot callbacks, the inventory API')
    .option('--bind <address>', 'address to listen on (default: the lab gateway; 127.0.0.1 with user networking)')
    .option('--port <port>', 'port to listen on (default: network.serverPort; 0 picks a free one)', intOption('--port', 0, 65535))
    .option('--public-url <url>', 'base URL guests use to reach this server, when it is not the default')
    .action(async (opts: { bind?: string; port?: number; publicUrl?: string }, cmd: Command) => {
      const { lab } = await openLab(cmd);
      const log = (line: string) => print(`${new Date().toISOString()} ${line}`);
      const server = await startServer(lab, { ...opts, log });
      print(`lab ${lab.config.name}: serving on ${server.url} (guests use ${server.guestUrl}); dashboard: ${server.url}/`);
      await new Promise<void>((resolve) => {
        const stop = (sig: string) => {
          log(`${sig}: stopping`);
          void server.close().then(resolve);
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      });
    });
}
