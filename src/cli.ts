#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { isLabError, ExitCode, UsageError } from './errors.js';
import { isStorageFailure, storageError } from './util/files.js';
import { commandWord, labDirOf } from './cli/argv.js';
import { serviceNames } from './project/services.js';
import { labPaths } from './project/paths.js';

type Register = (program: Command) => void;

/**
 * The built-in commands by name, each module loaded only when its command
 * runs: a command pays for what it uses (`lab hosts list` does not load the
 * server, SSH or the providers). Help, completion and unknown words load them all.
 */
const COMMANDS: Record<string, () => Promise<Register>> = {
  init: async () => (await import('./cli/init.js')).register,
  check: async () => (await import('./cli/check.js')).register,
  serve: async () => (await import('./cli/serve.js')).register,
  kickstart: async () => (await import('./cli/kickstart.js')).register,
  pxe: async () => (await import('./cli/pxe.js')).register,
  hosts: async () => (await import('./cli/hosts.js')).register,
  image: async () => (await import('./cli/image.js')).register,
  'ssh-config': async () => (await import('./cli/ssh.js')).register,
  ssh: async () => (await import('./cli/ssh.js')).register,
  env: async () => (await import('./cli/env.js')).register,
  monitor: async () => (await import('./cli/monitor.js')).register,
  doctor: async () => (await import('./cli/doctor.js')).register,
  hypervisor: async () => (await import('./cli/hypervisor.js')).register,
  console: async () => (await import('./cli/console.js')).register,
  completion: async () => (await import('./cli/completion.js')).register,
  services: async () => (await import('./cli/service.js')).registerServicesList,
};
const builtIn = Object.keys(COMMANDS);

const program = new Command('lab')
  .description('a local VM lab manager: build hosts from kickstart, serve them, track them, deploy to them')
  .option('--lab <dir>', 'the lab folder (holds environments.ts)', '.')
  .option('--debug', 'print every external command line (VBoxManage, qemu, ip) before it runs')
  .hook('preAction', (cmd) => {
    if ((cmd.opts() as { debug?: boolean }).debug) process.env.LAB_DEBUG = '1';
  })
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

const argv = process.argv.slice(2);
const word = commandWord(argv);
if (word !== undefined && Object.hasOwn(COMMANDS, word) && word !== 'completion') {
  (await COMMANDS[word]!())(program);
} else if (word !== undefined && serviceNames(labPaths(labDirOf(argv)).services).includes(word)) {
  (await import('./cli/service.js')).registerServices(program, argv, builtIn);
} else {
  // Help, completion (generated from every command), a service's operation or a word that is neither: all of them.
  const loaded = new Set<Register>();
  for (const load of Object.values(COMMANDS)) {
    const register = await load();
    if (!loaded.has(register)) register(program);
    loaded.add(register);
  }
  (await import('./cli/service.js')).registerServices(program, argv, builtIn);
}

// Neither a command nor a service: say which exist (commander would only suggest one).
program
  .usage('[options] <command> | <service> <operation>')
  .argument('[words...]')
  .allowUnknownOption()
  .action(async (words: string[]) => {
    if (words.length === 0) {
      program.outputHelp();
      process.exitCode = ExitCode.usage;
      return;
    }
    if (words[0]!.startsWith('-')) throw new UsageError(`unknown option "${words[0]}"`, 'see `lab --help`');
    const services = serviceNames(labPaths(labDirOf(argv)).services);
    throw new UsageError(
      `unknown command or service "${words[0]}"; services: ${services.join(', ') || 'none'}; commands: ${builtIn.join(', ')}`,
      'see `lab --help` and `lab services`',
    );
  });

/** The one place errors become exit codes. */
async function main(argv: string[]): Promise<number> {
  try {
    await program.parseAsync(argv);
    // A command that hands over to another program (lab ssh) passes on its exit code.
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // commander printed its own one-line message already
      return e.exitCode === 0 ? 0 : ExitCode.usage;
    }
    // A file system that takes no writes (full, read-only) is the machine's state, not a bug: one line, wherever it surfaced.
    const err = isStorageFailure(e) ? storageError((e as NodeJS.ErrnoException).path ?? 'a file of the lab', e) : e;
    if (isLabError(err)) {
      process.stderr.write(`lab: ${err.message}${err.hint ? `; ${err.hint}` : ''}\n`);
      return err.exitCode;
    }
    // Not a user error: a bug in lab. Keep everything for the report.
    process.stderr.write(`lab: internal error (please report):\n${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return 70;
  }
}

process.exitCode = await main(process.argv);
