import { existsSync } from 'node:fs';
import { execa } from 'execa';

let probed: Promise<'kvm' | 'tcg'> | undefined;

/**
 * KVM where it really works, else TCG. /dev/kvm can exist and still fail
 * (seen here: -enable-kvm hangs), so a short-lived QEMU is asked through QMP
 * whether KVM is enabled, under a deadline. LAB_ACCEL=kvm|tcg skips the probe.
 */
export function accelerator(): Promise<'kvm' | 'tcg'> {
  const forced = process.env.LAB_ACCEL;
  if (forced === 'kvm' || forced === 'tcg') return Promise.resolve(forced);
  probed ??= probe();
  return probed;
}

async function probe(): Promise<'kvm' | 'tcg'> {
  if (!existsSync('/dev/kvm')) return 'tcg';
  const child = execa(
    'qemu-system-x86_64',
    ['-accel', 'kvm', '-machine', 'pc', '-cpu', 'host', '-display', 'none', '-nodefaults', '-no-user-config', '-S', '-qmp', 'stdio'],
    { reject: false, timeout: 4000, input: '{"execute":"qmp_capabilities"}\n{"execute":"query-kvm"}\n{"execute":"quit"}\n' },
  );
  const r = await child;
  return /"enabled":\s*true/.test(String(r.stdout)) ? 'kvm' : 'tcg';
}
