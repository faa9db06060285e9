import type { ProviderKind } from '../types.js';
import { labNetwork } from './network.js';

/** VirtualBox through VBoxManage: NAT with its TFTP for installs, a host-only adapter on a bridged lab. */
export const virtualbox: ProviderKind = {
  name: 'virtualbox',
  macPrefix: [0x08, 0x00, 0x27],
  userNetHost: '10.0.2.2',
  create: async (lab) =>
    new (await import('./provider.js')).VirtualBoxProvider(lab.paths.vbox, undefined, {
      lab: lab.config.name,
      network: lab.config.network.mode === 'bridge' ? labNetwork(lab) : undefined,
    }),
  doctor: async (lab, probe) => (await import('./doctor.js')).virtualboxDoctor(lab, probe),
  // Since 6.1.28 host-only addresses must lie in 192.168.56.0/21 unless networks.conf says otherwise: the scaffold's network does.
  scaffold: (source) => source.replace("cidr: '10.77.0.0/24'", "cidr: '192.168.56.0/24'").replace("gateway: '10.77.0.1'", "gateway: '192.168.56.1'"),
  async prepareNetwork(lab, say) {
    if (lab.config.network.mode !== 'bridge') return;
    const [{ hostOsOf }, { VBoxDriver }, { ensureAttachment }] = await Promise.all([import('./provider.js'), import('./driver.js'), import('./network.js')]);
    const { made } = await ensureAttachment(new VBoxDriver(), labNetwork(lab), hostOsOf());
    if (made) say(`virtualbox: made ${made}`);
  },
};
