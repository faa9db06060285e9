#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { COMMANDS, registerAll, registerSummaries } from './cli/commands.js';
import { isLabError, ExitCode, UsageError } from './errors.js';
import { isStorageFailure, storageError } from './util/files.js';
import { commandWord, labDirOf } from './cli/argv.js';
import { serviceNames } from './project/services.js';
import { labPaths } from './project/paths.js';

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
if (word === undefined) {
  // Help, or an option that is none: the commands as the build summed them up (dist/commands.json), none of their modules loaded.
  if (!registerSummaries(program, new URL('./commands.json', import.meta.url))) await registerAll(program);
  (await import('./cli/service.js')).registerServices(program, argv, builtIn);
} else if (Object.hasOwn(COMMANDS, word) && word !== 'completion') {
  (await COMMANDS[word]!())(program);
} else if (serviceNames(labPaths(labDirOf(argv)).services).includes(word)) {
  (await import('./cli/service.js')).registerServices(program, argv, builtIn);
} else {
  // Completion (generated from every command) or a word that is neither a command nor a service: all of them.
  await registerAll(program);
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
