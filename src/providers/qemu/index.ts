import type { ProviderKind } from '../types.js';
import { QemuProvider } from './provider.js';
import { qemuDoctor } from './doctor.js';

/**
 * QEMU/KVM (TCG where KVM does not work): VMs under inventory/vms/, a tap on
 * the lab bridge or user networking with its built-in TFTP for PXE.
 */
export const qemu: ProviderKind = {
  name: 'qemu',
  macPrefix: [0x52, 0x54, 0x00],
  userNetHost: '10.0.2.2',
  create: (lab) => new QemuProvider(lab.paths.vms),
  doctor: qemuDoctor,
};
