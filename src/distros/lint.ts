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

/** What lint found: an error stops or exposes the install; a warning is what pykickstart warns of. */
export interface Finding {
  severity: 'error' | 'warning';
  text: string;
}
export const error = (text: string): Finding => ({ severity: 'error', text });
export const warning = (text: string): Finding => ({ severity: 'warning', text });

export function missing(rules: LintRule[], k: ParsedKickstart): Finding[] {
  return rules.filter((r) => !r.ok(k)).map((r) => error(`missing ${r.what}: ${r.why}`));
}

/**
 * A root password in the kickstart itself (rootpw --plaintext, or a bare
 * rootpw PASSWORD): the kickstart is served over HTTP, so whoever can fetch
 * it learns the password. --iscrypted (a hash) or --lock (with sshkey) do not.
 */
export function plainRootPassword(k: ParsedKickstart): Finding[] {
  const plain = (k.commands.get('rootpw') ?? []).some((args) => {
    const words = args.split(/\s+/).filter(Boolean);
    if (words.includes('--plaintext')) return true;
    return !words.includes('--iscrypted') && words.some((w) => !w.startsWith('--'));
  });
  return plain ? [error('rootpw with a plain-text password: the kickstart is served over HTTP, so whoever fetches it has the password; use rootpw --iscrypted with a hash (openssl passwd -6), or rootpw --lock and sshkey')] : [];
}
