import type { ProviderKind } from '../types.js';

/**
 * QEMU/KVM (TCG where KVM does not work): VMs under inventory/vms/, a tap on
 * the lab bridge or user networking with its built-in TFTP for PXE.
 */
export const qemu: ProviderKind = {
  name: 'qemu',
  macPrefix: [0x52, 0x54, 0x00],
  userNetHost: '10.0.2.2',
  create: async (lab) => new (await import('./provider.js')).QemuProvider(lab.paths.vms),
  // Loaded when lab doctor runs: its checks start processes, which no other command pays for.
  doctor: async (lab, probe) => (await import('./doctor.js')).qemuDoctor(lab, probe),
};
