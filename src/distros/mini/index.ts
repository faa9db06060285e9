import type { DistroKind } from '../types.js';
import { COMMON_RULES, missing, plainRootPassword } from '../lint.js';
import { miniGuest } from './guest.js';
import { makeBootable } from './bootable.js';

/**
 * The mini guest (guest/mini): a Debian kernel and a busybox initramfs that
 * installs from a kickstart and then boots its disk with the same kernel.
 * Built from Debian packages, it boots in seconds even without KVM; hosts
 * are linked clones of the built image.
 */
export const mini: DistroKind = {
  name: 'mini',
  description: "lab's own small guest, built from Debian packages",
  needsIso: false,
  hostsAre: 'clones',
  takesHostKeys: true,
  bootFiles: (_labDir, _image, log) => miniGuest(log),
  bootSpec: (image, ksUrl) => ({ kernel: `images/${image}/vmlinuz`, initrd: `images/${image}/initrd.img`, args: `inst.ks=${ksUrl} ks=${ksUrl} console=ttyS0 quiet` }),
  // No bootloader: its kernel boots the installed disk; lab.host= names a clone (it takes its own identity).
  diskBootArgs: (host, ip) => `console=ttyS0 lab.host=${host}${ip}`,
  lint: (k) => [...missing(COMMON_RULES, k), ...plainRootPassword(k)],
  makeBootable,
};
