import type { BootSource, VmSpec } from './types.js';

/** What a start really boots: a disk boot of a guest without a bootloader (mini) is its kernel boot. */
export function effectiveBoot(spec: VmSpec, boot: BootSource): BootSource {
  if (boot.kind !== 'disk' || !spec.diskBoot) return boot;
  const { kernel, initrd, append } = spec.diskBoot;
  return { kind: 'kernel', kernel, initrd, append };
}
