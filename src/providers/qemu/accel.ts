import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadExeca } from '../../util/exec.js';
import { cacheRoot } from '../../project/paths.js';
import { writeFileAtomicSync } from '../../util/files.js';

const probed = new Map<string, Promise<'kvm' | 'tcg'>>();

/**
 * KVM where it really works, else TCG. /dev/kvm can exist, QEMU can report
 * KVM enabled and its BIOS can run, and a Linux kernel still never prints a
 * line under it (seen on this project's machines): so the probe boots the
 * kernel about to be booted under KVM and waits for its first line. The
 * answer is kept per boot of this machine, kernel and QEMU build (the probe
 * costs up to 3 s where KVM hangs). LAB_ACCEL=kvm|tcg skips the probe.
 */
export function accelerator(kernel?: string): Promise<'kvm' | 'tcg'> {
  // (kernel: one the VM will run; without one, what this boot of the machine learned, else QEMU's word.)
  const forced = process.env.LAB_ACCEL;
  if (forced === 'kvm' || forced === 'tcg') return Promise.resolve(forced);
  const key = kernel ?? '';
  let p = probed.get(key);
  if (!p) {
    p = cached(kernel);
    probed.set(key, p);
  }
  return p;
}

const KVM_ARGS = ['-accel', 'kvm', '-cpu', 'host', '-machine', 'pc', '-display', 'none', '-nodefaults', '-no-user-config'];

async function cached(kernel: string | undefined): Promise<'kvm' | 'tcg'> {
  if (!existsSync('/dev/kvm')) return 'tcg';
  const file = path.join(cacheRoot(), 'accel.json');
  const key = [bootId(), qemuBuild(), kernel ? `${kernel}:${statSync(kernel).mtimeMs}` : 'no kernel'].join('|');
  let saved: Record<string, 'kvm' | 'tcg'> = {};
  try {
    saved = JSON.parse(readFileSync(file, 'utf8')) as Record<string, 'kvm' | 'tcg'>;
    if (Object.hasOwn(saved, key)) return saved[key]!;
    // No kernel to try (a disk with its own bootloader): what a kernel found under KVM on this boot of the machine.
    const learned = Object.entries(saved).find(([k]) => k.startsWith(`${bootId()}|${qemuBuild()}|`) && !k.endsWith('|no kernel'));
    if (!kernel && learned) return learned[1];
  } catch {
    // no cache yet
  }
  const answer = (await qmpSaysKvm()) && (!kernel || (await kernelRuns(kernel))) ? 'kvm' : 'tcg';
  try {
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileAtomicSync(file, `${JSON.stringify({ ...saved, [key]: answer })}\n`, 0o644);
  } catch {
    // a cache that cannot be written only costs the probe again
  }
  return answer;
}

function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return 'unknown boot';
  }
}

function qemuBuild(): string {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const f = path.join(dir, 'qemu-system-x86_64');
    if (existsSync(f)) return `${f}:${statSync(f).mtimeMs}`;
  }
  return 'no qemu';
}

/** QEMU's own word: can it enable KVM at all? */
async function qmpSaysKvm(): Promise<boolean> {
  const execa = await loadExeca();
  const r = await execa('qemu-system-x86_64', [...KVM_ARGS, '-S', '-qmp', 'stdio'], {
    reject: false,
    timeout: 4000,
    input: '{"execute":"qmp_capabilities"}\n{"execute":"query-kvm"}\n{"execute":"quit"}\n',
  });
  return /"enabled":\s*true/.test(String(r.stdout));
}

/** The kernel prints its first line under KVM within 3 s (TCG takes about as long; working KVM a fraction). */
async function kernelRuns(kernel: string): Promise<boolean> {
  const dir = mkdtempSync(path.join(tmpdir(), 'lab-kvm-'));
  const out = path.join(dir, 'console');
  const execa = await loadExeca();
  try {
    const child = execa('qemu-system-x86_64', [...KVM_ARGS, '-m', '128', '-no-reboot', '-serial', `file:${out}`, '-kernel', kernel, '-append', 'console=ttyS0 panic=-1'], {
      reject: false,
      timeout: 3000,
    });
    for (let i = 0; i < 60; i++) {
      if (existsSync(out) && readFileSync(out, 'utf8').includes('Linux version')) {
        child.kill('SIGKILL');
        await child;
        return true;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill('SIGKILL');
    await child;
    return false;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
