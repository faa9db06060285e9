import { existsSync } from 'node:fs';
import { LabError } from '../errors.js';

/** Debian's pxelinux and the module it loads first: what a PXE boot folder needs. */
export const SYSLINUX = { pxelinux: '/usr/lib/PXELINUX/pxelinux.0', ldlinux: '/usr/lib/syslinux/modules/bios/ldlinux.c32' } as const;

export function requireSyslinux(): typeof SYSLINUX {
  for (const f of Object.values(SYSLINUX)) {
    if (!existsSync(f)) throw new LabError(`${f} is missing`, { hint: 'apt-get install pxelinux syslinux-common' });
  }
  return SYSLINUX;
}
