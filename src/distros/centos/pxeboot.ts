import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { run } from '../../util/exec.js';
import { UsageError } from '../../errors.js';
import { cacheRoot } from '../../project/paths.js';
import type { BootFiles, ImageFacts } from '../types.js';

/** The installer kernel and initrd from the ISO's images/pxeboot/, extracted once per ISO and cached. */
export async function pxebootFiles(labDir: string, image: ImageFacts, log: (l: string) => void): Promise<BootFiles> {
  const iso = path.resolve(labDir, image.iso!);
  if (!existsSync(iso)) throw new UsageError(`environments.ts: images.${image.name}.iso: ${image.iso} does not exist; put the installer image there`);
  const st = statSync(iso);
  const dir = path.join(cacheRoot(), 'pxeboot', createHash('sha256').update(`${iso}:${st.size}:${st.mtimeMs}`).digest('hex').slice(0, 16));
  const out = { kernel: path.join(dir, 'vmlinuz'), initrd: path.join(dir, 'initrd.img') };
  if (existsSync(out.kernel) && existsSync(out.initrd)) return out;
  log(`extracting images/pxeboot/ from ${image.iso}`);
  const tmp = `${dir}.tmp-${process.pid}`;
  mkdirSync(tmp, { recursive: true });
  try {
    await run('bsdtar', ['-x', '-f', iso, '-C', tmp, 'images/pxeboot/vmlinuz', 'images/pxeboot/initrd.img'], {
      what: `extracting the installer kernel from ${image.iso}`,
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
