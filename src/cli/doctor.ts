import type { Command } from 'commander';
import { runChecks } from '../doctor/checks.js';
import { ExitCode } from '../errors.js';
import { openLab } from './common.js';
import { print, printJson } from './output.js';

const mark = { ok: 'ok  ', warn: 'warn', fail: 'FAIL' } as const;

export function register(program: Command): void {
  program
    .command('doctor')
    .description("check what this lab needs from the machine (provider, KVM, ping, taps, the server's port, ISOs), with a fix for each failure")
    .option('--json', 'print as JSON')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const { lab } = await openLab(cmd);
      const checks = await runChecks(lab);
      const failed = checks.filter((c) => c.status === 'fail');
      if (o.json) printJson(checks);
      else {
        const width = Math.max(...checks.map((c) => c.name.length));
        for (const c of checks) {
          print(`${mark[c.status]}  ${c.name.padEnd(width)}  ${c.detail}`);
          if (c.fix && c.status !== 'ok') print(`${' '.repeat(width + 8)}fix: ${c.fix}`);
        }
        print(failed.length ? `${failed.length} check(s) failed` : `all checks passed for provider ${lab.config.provider}, network ${lab.config.network.mode}`);
      }
      if (failed.length) process.exitCode = ExitCode.environment;
    });
}
