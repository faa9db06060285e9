import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { EnvironmentError, messageOf } from '../../errors.js';
import { run } from '../../util/exec.js';
import type { BootFiles } from '../types.js';

/**
 * A mini disk that boots by itself: its install writes the system to the
 * whole disk (ext2, no partition table) and no bootloader, since lab boots
 * its kernel from outside. An exported disk gets the kernel and initrd in
 * /boot and extlinux in the file system's boot sector, which on a
 * partitionless disk is the sector the BIOS reads: plain
 * `qemu-system-x86_64 -drive file=...` then boots it (SeaBIOS, checked by
 * image.test.ts), and its init boots the installed system as lab would.
 */
export async function makeBootable(raw: string, boot: BootFiles): Promise<void> {
  if (process.getuid?.() !== 0) throw new EnvironmentError('exporting a mini image mounts its disk to give it a bootloader: run lab image export as root');
  const mnt = mkdtempSync(path.join(tmpdir(), 'lab-export-'));
  try {
    await run('mount', ['-o', 'loop', '-t', 'ext4', raw, mnt], { what: `mounting the exported disk ${raw}` });
    try {
      mkdirSync(path.join(mnt, 'boot'), { recursive: true });
      copyFileSync(boot.kernel, path.join(mnt, 'boot', 'vmlinuz'));
      copyFileSync(boot.initrd, path.join(mnt, 'boot', 'initrd.img'));
      writeFileSync(path.join(mnt, 'boot', 'extlinux.conf'), 'SERIAL 0 115200\nDEFAULT lab\nTIMEOUT 1\nLABEL lab\n  KERNEL vmlinuz\n  INITRD initrd.img\n  APPEND console=ttyS0 quiet\n');
      await run('extlinux', ['--install', path.join(mnt, 'boot')], { what: 'installing extlinux on the exported disk' });
    } catch (e) {
      if (/ENOSPC/.test(messageOf(e))) throw new EnvironmentError(`the exported disk has no room for the kernel and initrd (${messageOf(e)}): give the image a larger disk`);
      throw e;
    } finally {
      await run('umount', [mnt], { what: `unmounting ${mnt}` });
    }
  } finally {
    rmSync(mnt, { recursive: true, force: true });
  }
}
