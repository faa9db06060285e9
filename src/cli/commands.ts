import { readFileSync } from 'node:fs';
import { Help, type Command } from 'commander';

type Register = (program: Command) => void;

/**
 * The built-in commands by name, each module loaded only when its command
 * runs: a command pays for what it uses (`lab hosts list` does not load the
 * server, SSH or the providers). Completion and unknown words load them all.
 */
export const COMMANDS: Record<string, () => Promise<Register>> = {
  init: async () => (await import('./init.js')).register,
  check: async () => (await import('./check.js')).register,
  serve: async () => (await import('./serve.js')).register,
  kickstart: async () => (await import('./kickstart.js')).register,
  pxe: async () => (await import('./pxe.js')).register,
  hosts: async () => (await import('./hosts.js')).register,
  image: async () => (await import('./image.js')).register,
  'ssh-config': async () => (await import('./ssh.js')).register,
  ssh: async () => (await import('./ssh.js')).register,
  env: async () => (await import('./env.js')).register,
  monitor: async () => (await import('./monitor.js')).register,
  doctor: async () => (await import('./doctor.js')).register,
  hypervisor: async () => (await import('./hypervisor.js')).register,
  console: async () => (await import('./console.js')).register,
  completion: async () => (await import('./completion.js')).register,
  services: async () => (await import('./service.js')).registerServicesList,
};

export async function registerAll(program: Command): Promise<void> {
  const loaded = new Set<Register>();
  for (const load of Object.values(COMMANDS)) {
    const register = await load();
    if (!loaded.has(register)) register(program);
    loaded.add(register);
  }
}

/** A command as `lab --help` lists it: its name, the term (name, [options], arguments) and its description. */
export interface CommandSummary {
  name: string;
  term: string;
  description: string;
}

/** What `lab --help` says of every built-in command: the build writes it to dist/commands.json (scripts/bundle.mjs). */
export async function commandSummaries(program: Command): Promise<CommandSummary[]> {
  await registerAll(program);
  const help = new Help();
  return program.commands.map((c) => ({ name: c.name(), term: help.subcommandTerm(c), description: help.subcommandDescription(c) }));
}

/**
 * `lab --help` from the build's summaries: compiling every command's module
 * only to list them was a third of its start-up. False when the build wrote
 * none (lab run from its sources): then the caller registers them all.
 */
export function registerSummaries(program: Command, file: URL): boolean {
  let summaries: CommandSummary[];
  try {
    summaries = JSON.parse(readFileSync(file, 'utf8')) as CommandSummary[];
  } catch {
    return false;
  }
  const terms = new Map(summaries.map((s) => [s.name, s.term]));
  for (const s of summaries) program.command(s.name).description(s.description);
  const standard = new Help();
  program.configureHelp({ subcommandTerm: (c) => terms.get(c.name()) ?? standard.subcommandTerm(c) });
  return true;
}
