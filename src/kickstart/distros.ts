import type { Distro } from '../config/schema.js';

/**
 * What each distro's installer needs on its kernel line, and where PXE finds
 * its kernel and initrd (relative to the TFTP root, filled by `lab image build`).
 */
export interface BootSpec {
  kernel: string;
  initrd: string;
  args: string;
}

export function bootSpec(distro: Distro, image: string, ksUrl: string): BootSpec {
  const dir = `images/${image}`;
  switch (distro) {
    case 'centos':
      // inst.ks.sendmac makes anaconda send X-RHN-Provisioning-MAC-0 with the kickstart fetch.
      return {
        kernel: `${dir}/vmlinuz`,
        initrd: `${dir}/initrd.img`,
        args: `inst.ks=${ksUrl} ks=${ksUrl} inst.ks.sendmac inst.repo=cdrom ip=dhcp console=ttyS0,115200 console=tty0`,
      };
    case 'mini':
      return { kernel: `${dir}/vmlinuz`, initrd: `${dir}/initrd.img`, args: `inst.ks=${ksUrl} ks=${ksUrl} console=ttyS0 quiet` };
  }
}
