import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { run } from '../../util/exec.js';
import { cacheRoot } from '../../project/paths.js';
import { packageRoot } from '../../project/root.js';

/** guest/mini in the package: the build script and the init it packs. */
const guestDir = path.join(packageRoot, 'guest', 'mini');
const INPUTS = ['build.sh', 'init', 'udhcpc.script', 'power.sh', 'shutdown'];

export interface MiniGuest {
  kernel: string;
  initrd: string;
}

/** What the build depends on: its own files and the Debian packages it takes. A change of any rebuilds. */
async function inputsKey(): Promise<string> {
  const h = createHash('sha256');
  for (const f of INPUTS) h.update(f).update(readFileSync(path.join(guestDir, f)));
  const own = h.copy().digest('hex');
  // Asking apt and dpkg costs 0.6 s of every build: their answer is kept until their databases change.
  const stamp = `${own} ${PACKAGE_DBS.map((f) => (existsSync(f) ? `${statSync(f).mtimeMs}:${statSync(f).size}` : '-')).join(' ')}`;
  const kept = path.join(cacheRoot(), 'mini', 'inputs.json');
  try {
    const k = JSON.parse(readFileSync(kept, 'utf8')) as { stamp?: string; key?: string };
    if (k.stamp === stamp && k.key) return k.key;
  } catch {
    // none kept yet, or unreadable: asked again below
  }
  h.update(await run('apt-cache', ['depends', 'linux-image-amd64'], { what: 'looking up the Debian kernel package' }));
  const packages = ['busybox-static', 'dropbear-bin', 'openssh-sftp-server', 'python3.11-minimal', 'libpython3.11-stdlib'];
  h.update(await run('dpkg-query', ['-W', ...packages], { what: `looking up ${packages.join(', ')}` }));
  const key = h.digest('hex').slice(0, 16);
  mkdirSync(path.dirname(kept), { recursive: true });
  writeFileSync(kept, JSON.stringify({ stamp, key }));
  return key;
}

/** What apt-cache and dpkg-query read: an apt-get update or an install changes one of them. */
const PACKAGE_DBS = ['/var/lib/dpkg/status', '/var/cache/apt/pkgcache.bin', '/var/lib/apt/lists'];

/** A mini guest kernel already built (any version), without building one. */
export function anyMiniKernel(): string | undefined {
  const root = path.join(cacheRoot(), 'mini');
  if (!existsSync(root)) return undefined;
  return readdirSync(root)
    .map((d) => path.join(root, d, 'vmlinuz'))
    .find((k) => existsSync(k));
}

/** The mini guest's kernel and initrd, built once per set of inputs and cached. */
export async function miniGuest(log: (line: string) => void = () => undefined): Promise<MiniGuest> {
  const dir = path.join(cacheRoot(), 'mini', await inputsKey());
  const out = { kernel: path.join(dir, 'vmlinuz'), initrd: path.join(dir, 'initrd.img') };
  if (existsSync(out.kernel) && existsSync(out.initrd)) return out;
  log(`building the mini guest into ${dir}`);
  const tmp = `${dir}.tmp-${process.pid}`;
  mkdirSync(path.dirname(dir), { recursive: true });
  try {
    await run('bash', [path.join(guestDir, 'build.sh'), tmp], { what: 'building the mini guest', timeoutMs: 600_000 });
    // Another build may have finished first; either result is the same.
    if (!existsSync(dir)) renameSync(tmp, dir);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return out;
}
