import type { ProviderKind } from '../types.js';
import { hostOsOf, VirtualBoxProvider } from './provider.js';
import { VBoxDriver } from './driver.js';
import { ensureAttachment } from './network.js';
import { virtualboxDoctor } from './doctor.js';

/** VirtualBox through VBoxManage: NAT with its TFTP for installs, a host-only adapter on a bridged lab. */
export const virtualbox: ProviderKind = {
  name: 'virtualbox',
  macPrefix: [0x08, 0x00, 0x27],
  userNetHost: '10.0.2.2',
  create: (lab) =>
    new VirtualBoxProvider(lab.paths.vbox, undefined, {
      lab: lab.config.name,
      network: lab.config.network.mode === 'bridge' ? { lab: lab.config.name, cidr: lab.config.network.cidr, gateway: lab.config.network.gateway } : undefined,
    }),
  doctor: virtualboxDoctor,
  async prepareNetwork(lab, say) {
    if (lab.config.network.mode !== 'bridge') return;
    const { made } = await ensureAttachment(new VBoxDriver(), { lab: lab.config.name, cidr: lab.config.network.cidr, gateway: lab.config.network.gateway }, hostOsOf());
    if (made) say(`virtualbox: made ${made}`);
  },
};
