import type { DistroKind } from '../types.js';
import { COMMON_RULES, error, hasCommand, missing, plainRootPassword, warning, type Finding, type LintRule, type ParsedKickstart } from '../lint.js';
import { pxebootFiles } from './pxeboot.js';

/** What anaconda needs beyond every installer's basics. */
const RULES: LintRule[] = [
  { what: 'an installation source (url, cdrom, nfs, harddrive or liveimg)', why: 'the installer asks where to install from', ok: (k) => hasCommand(k, 'url', 'cdrom', 'nfs', 'harddrive', 'liveimg', 'ostreesetup') },
  ...COMMON_RULES,
  { what: 'clearpart or zerombr', why: 'a disk with old partitions stops the installer at a question', ok: (k) => hasCommand(k, 'clearpart', 'zerombr') },
  { what: 'bootloader', why: 'the installed system may not boot', ok: (k) => hasCommand(k, 'bootloader') },
  { what: 'text (or cmdline) mode', why: 'the graphical installer may wait for input', ok: (k) => hasCommand(k, 'text', 'cmdline') },
];

/**
 * Commands by release, as pykickstart's RHEL9 and RHEL10 handlers have them
 * (pykickstart/handlers/rhel9.py, rhel10.py): removed ones stop anaconda;
 * deprecated ones pykickstart warns of and anaconda ignores.
 */
const RELEASES = {
  RHEL9: {
    removed: ['install', 'device', 'deviceprobe', 'dmraid', 'multipath', 'upgrade', 'btrfs', 'method'],
    deprecated: { auth: 'authselect', authconfig: 'authselect', autostep: '' } as Record<string, string>,
  },
  RHEL10: {
    removed: ['install', 'device', 'deviceprobe', 'dmraid', 'multipath', 'upgrade', 'btrfs', 'method', 'auth', 'authconfig', 'autostep'],
    deprecated: {} as Record<string, string>,
  },
} as const;
type Release = keyof typeof RELEASES;

function byRelease(k: ParsedKickstart, release: Release): Finding[] {
  const r = RELEASES[release];
  const later = release === 'RHEL9' ? ' (removed on RHEL 10)' : '';
  return [
    ...r.removed.filter((c) => k.commands.has(c)).map((c) => error(`"${c}" is not a ${release} kickstart command: anaconda stops on it`)),
    ...Object.entries(r.deprecated)
      .filter(([c]) => k.commands.has(c))
      .map(([c, instead]) => warning(`"${c}" is deprecated on ${release}: pykickstart warns and anaconda ignores it${instead ? `; use ${instead}` : ''}${later}`)),
  ];
}

/**
 * CentOS Stream 9 (and Rocky, Alma 9): anaconda from the DVD ISO, its kernel
 * and initrd taken from the ISO's images/pxeboot/; each host installs as
 * itself (a clone would keep its image's identity).
 */
export const centos: DistroKind = {
  name: 'centos',
  description: 'CentOS Stream 9 (or Rocky, Alma 9) from its DVD ISO, installed by anaconda',
  needsIso: true,
  hostsAre: 'installs',
  bootFiles: (labDir, image, log) => pxebootFiles(labDir, image, log),
  // inst.ks.sendmac makes anaconda send X-RHN-Provisioning-MAC-0 with the kickstart fetch.
  bootSpec: (image, ksUrl) => ({
    kernel: `images/${image}/vmlinuz`,
    initrd: `images/${image}/initrd.img`,
    args: `inst.ks=${ksUrl} ks=${ksUrl} inst.ks.sendmac inst.repo=cdrom ip=dhcp console=ttyS0,115200 console=tty0`,
  }),
  lintTargets: ['RHEL9', 'RHEL10'],
  lint: (k, target = 'RHEL9') => [
    ...missing(RULES, k),
    ...byRelease(k, target as Release),
    ...plainRootPassword(k),
    ...(hasCommand(k, 'graphical', 'interactive') ? [error('graphical or interactive mode: the install waits for a person')] : []),
  ],
};
