import type { ProviderKind } from '../types.js';
import { VirtualBoxProvider } from './provider.js';
import { virtualboxDoctor } from './doctor.js';

/** VirtualBox through VBoxManage: NAT with its TFTP for installs, a host-only adapter on a bridged lab. */
export const virtualbox: ProviderKind = {
  name: 'virtualbox',
  macPrefix: [0x08, 0x00, 0x27],
  userNetHost: '10.0.2.2',
  create: (lab) => new VirtualBoxProvider(lab.paths.vbox),
  doctor: virtualboxDoctor,
};
