/** A kickstart read for checking: its commands (outside sections) and its %post scripts, comment lines left out. */
export interface ParsedKickstart {
  commands: Map<string, string[]>;
  post: string;
}

export function parseKickstart(text: string): ParsedKickstart {
  const commands = new Map<string, string[]>();
  let post = '';
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (/^%end\b/.test(line)) {
      section = '';
      continue;
    }
    if (line.startsWith('%')) {
      section = line.split(/\s+/)[0]!;
      continue;
    }
    // A commented-out line of a script does nothing (a callback only in a comment calls nobody).
    if (section === '%post' && !line.startsWith('#')) post += `${raw}\n`;
    if (section || !line || line.startsWith('#')) continue;
    const [cmd, ...rest] = line.split(/\s+/);
    commands.set(cmd!, [...(commands.get(cmd!) ?? []), rest.join(' ')]);
  }
  return { commands, post };
}

export const hasCommand = (k: ParsedKickstart, ...names: string[]) => names.some((n) => k.commands.has(n));

/** A check that a kickstart has what an unattended install needs. */
export interface LintRule {
  what: string;
  why: string;
  ok: (k: ParsedKickstart) => boolean;
}

/** What every installer asks for when the kickstart does not say. */
export const COMMON_RULES: LintRule[] = [
  { what: 'lang', why: 'the installer stops at the language screen', ok: (k) => hasCommand(k, 'lang') },
  { what: 'keyboard', why: 'the installer stops at the keyboard screen', ok: (k) => hasCommand(k, 'keyboard') },
  { what: 'timezone', why: 'the installer stops at the time zone screen', ok: (k) => hasCommand(k, 'timezone') },
  { what: 'a disk layout (autopart, or part/logvol)', why: 'the installer stops at the disk screen', ok: (k) => hasCommand(k, 'autopart', 'part', 'partition', 'logvol', 'reqpart') },
  { what: 'reboot, poweroff, halt or shutdown', why: 'the installer waits for a key press at the end', ok: (k) => hasCommand(k, 'reboot', 'poweroff', 'halt', 'shutdown') },
  { what: 'a root password or an SSH key (rootpw, sshkey)', why: 'the installer stops at the root password screen', ok: (k) => hasCommand(k, 'rootpw', 'sshkey') },
];

export function missing(rules: LintRule[], k: ParsedKickstart): string[] {
  return rules.filter((r) => !r.ok(k)).map((r) => `missing ${r.what}: ${r.why}`);
}
