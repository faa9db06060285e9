import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { Lab } from '../config/load.js';
import { cacheRoot, miniGuest } from '../images/mini.js';
import { run } from '../providers/exec.js';
import { UsageError } from '../errors.js';

export interface BootFiles {
  kernel: string;
  initrd: string;
}

/** The installer kernel and initrd of an image: built (mini) or taken from the ISO's images/pxeboot/ (centos). */
export async function bootFiles(lab: Lab, image: string, log: (l: string) => void): Promise<BootFiles> {
  const cfg = lab.config.images[image]!;
  if (cfg.distro === 'mini') return miniGuest(log);
  const iso = path.resolve(lab.paths.dir, cfg.iso!);
  if (!existsSync(iso)) throw new UsageError(`environments.ts: images.${image}.iso: ${cfg.iso} does not exist; put the installer image there`);
  const st = statSync(iso);
  const dir = path.join(cacheRoot(), 'pxeboot', createHash('sha256').update(`${iso}:${st.size}:${st.mtimeMs}`).digest('hex').slice(0, 16));
  const out = { kernel: path.join(dir, 'vmlinuz'), initrd: path.join(dir, 'initrd.img') };
  if (existsSync(out.kernel) && existsSync(out.initrd)) return out;
  log(`extracting images/pxeboot/ from ${cfg.iso}`);
  const tmp = `${dir}.tmp-${process.pid}`;
  mkdirSync(tmp, { recursive: true });
  try {
    await run('bsdtar', ['-x', '-f', iso, '-C', tmp, 'images/pxeboot/vmlinuz', 'images/pxeboot/initrd.img'], {
      what: `extracting the installer kernel from ${cfg.iso}`,
      timeoutMs: 300_000,
    });
    mkdirSync(dir, { recursive: true });
    renameSync(path.join(tmp, 'images/pxeboot/vmlinuz'), out.kernel);
    renameSync(path.join(tmp, 'images/pxeboot/initrd.img'), out.initrd);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return out;
}
