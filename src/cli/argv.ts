// What the entry point reads of a command line before commander parses it
// (commander parses only once the commands are registered, and which to
// register depends on these).

/** The --lab value of a command line not yet parsed (commander parses after commands are known). */
export function labDirOf(argv: string[]): string {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') break;
    if (a === '--lab') return argv[i + 1] ?? '.';
    if (a.startsWith('--lab=')) return a.slice('--lab='.length);
  }
  return '.';
}

/** The command word of a command line not yet parsed: the first word that is neither a global option nor its value. */
export function commandWord(argv: string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--lab') i++;
    else if (!a.startsWith('-')) return a;
    else if (a === '--') return undefined;
    else if (a !== '--debug' && !a.startsWith('--lab=')) return undefined; // --help, --version, an unknown option
  }
  return undefined;
}
