import type { Distro } from '../config/schema.js';

/**
 * Is a rendered kickstart complete for an unattended install? pykickstart's
 * validator checks syntax only: a file without a timezone passes and then
 * stops the installer at a prompt. These are the gaps that hang or lose an
 * install, per distro.
 */
interface Rule {
  what: string;
  why: string;
  distros: Distro[];
  ok: (k: Parsed) => boolean;
}

interface Parsed {
  commands: Map<string, string[]>;
  post: string;
}

function parse(text: string): Parsed {
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
    if (section === '%post') post += `${raw}\n`;
    if (section || !line || line.startsWith('#')) continue;
    const [cmd, ...rest] = line.split(/\s+/);
    commands.set(cmd!, [...(commands.get(cmd!) ?? []), rest.join(' ')]);
  }
  return { commands, post };
}

const has = (k: Parsed, ...names: string[]) => names.some((n) => k.commands.has(n));

const RULES: Rule[] = [
  { what: 'an installation source (url, cdrom, nfs, harddrive or liveimg)', why: 'the installer asks where to install from', distros: ['centos'], ok: (k) => has(k, 'url', 'cdrom', 'nfs', 'harddrive', 'liveimg', 'ostreesetup') },
  { what: 'lang', why: 'the installer stops at the language screen', distros: ['centos', 'mini'], ok: (k) => has(k, 'lang') },
  { what: 'keyboard', why: 'the installer stops at the keyboard screen', distros: ['centos', 'mini'], ok: (k) => has(k, 'keyboard') },
  { what: 'timezone', why: 'the installer stops at the time zone screen', distros: ['centos', 'mini'], ok: (k) => has(k, 'timezone') },
  { what: 'a disk layout (autopart, or part/logvol)', why: 'the installer stops at the disk screen', distros: ['centos', 'mini'], ok: (k) => has(k, 'autopart', 'part', 'partition', 'logvol', 'reqpart') },
  { what: 'clearpart or zerombr', why: 'a disk with old partitions stops the installer at a question', distros: ['centos'], ok: (k) => has(k, 'clearpart', 'zerombr') },
  { what: 'bootloader', why: 'the installed system may not boot', distros: ['centos'], ok: (k) => has(k, 'bootloader') },
  { what: 'reboot, poweroff, halt or shutdown', why: 'the installer waits for a key press at the end', distros: ['centos', 'mini'], ok: (k) => has(k, 'reboot', 'poweroff', 'halt', 'shutdown') },
  { what: 'a root password or an SSH key (rootpw, sshkey)', why: 'the installer stops at the root password screen', distros: ['centos', 'mini'], ok: (k) => has(k, 'rootpw', 'sshkey') },
  { what: 'text (or cmdline) mode', why: 'the graphical installer may wait for input', distros: ['centos'], ok: (k) => has(k, 'text', 'cmdline') },
];

/** Commands RHEL 9's kickstart no longer accepts: anaconda stops on them. */
const REMOVED_RHEL9 = ['install', 'device', 'deviceprobe', 'dmraid', 'multipath', 'auth', 'authconfig', 'upgrade', 'btrfs', 'method'];

export function lintKickstart(text: string, distro: Distro, callbackUrl: string): string[] {
  const k = parse(text);
  const problems: string[] = [];
  for (const r of RULES) if (r.distros.includes(distro) && !r.ok(k)) problems.push(`missing ${r.what}: ${r.why}`);
  if (distro === 'centos') {
    for (const c of REMOVED_RHEL9) if (k.commands.has(c)) problems.push(`"${c}" is not a RHEL 9 kickstart command: anaconda stops on it`);
    if (has(k, 'graphical', 'interactive')) problems.push('graphical or interactive mode: the install waits for a person');
  }
  // The callback must carry lab's URL and token; the base is what identifies it.
  const base = callbackUrl.split('&')[0]!;
  if (!k.post.includes(base)) problems.push(`no callback in %post (expected a request to ${base}&...): lab would never learn the install finished`);
  return problems;
}
