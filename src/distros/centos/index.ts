import type { DistroKind } from '../types.js';
import { COMMON_RULES, hasCommand, missing, type LintRule } from '../lint.js';
import { pxebootFiles } from './pxeboot.js';

/** What anaconda needs beyond every installer's basics. */
const RULES: LintRule[] = [
  { what: 'an installation source (url, cdrom, nfs, harddrive or liveimg)', why: 'the installer asks where to install from', ok: (k) => hasCommand(k, 'url', 'cdrom', 'nfs', 'harddrive', 'liveimg', 'ostreesetup') },
  ...COMMON_RULES,
  { what: 'clearpart or zerombr', why: 'a disk with old partitions stops the installer at a question', ok: (k) => hasCommand(k, 'clearpart', 'zerombr') },
  { what: 'bootloader', why: 'the installed system may not boot', ok: (k) => hasCommand(k, 'bootloader') },
  { what: 'text (or cmdline) mode', why: 'the graphical installer may wait for input', ok: (k) => hasCommand(k, 'text', 'cmdline') },
];

/** Commands RHEL 9's kickstart no longer accepts: anaconda stops on them. */
const REMOVED_RHEL9 = ['install', 'device', 'deviceprobe', 'dmraid', 'multipath', 'auth', 'authconfig', 'upgrade', 'btrfs', 'method'];

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
  lint: (k) => [
    ...missing(RULES, k),
    ...REMOVED_RHEL9.filter((c) => k.commands.has(c)).map((c) => `"${c}" is not a RHEL 9 kickstart command: anaconda stops on it`),
    ...(hasCommand(k, 'graphical', 'interactive') ? ['graphical or interactive mode: the install waits for a person'] : []),
  ],
};
