import { defineLab } from 'lab';

// The lab: its network, the images hosts are built from, and the environments
// made of groups of hosts by role. `lab check` validates this file; README
// "environments.ts" describes every field.
export default defineLab({
  name: 'lab',
  provider: 'qemu',
  network: {
    name: 'labnet',
    // bridge: hosts get addresses from cidr on a bridge whose address is the gateway.
    // user: QEMU user networking / VirtualBox NAT (guests reach the server at 10.0.2.2).
    mode: 'bridge',
    cidr: '10.77.0.0/24',
    gateway: '10.77.0.1',
    serverPort: 8077,
  },
  images: {
    // CentOS Stream 9 (or Rocky / Alma 9): drop the DVD ISO into iso/.
    centos9: {
      distro: 'centos',
      iso: 'iso/CentOS-Stream-9-latest-x86_64-dvd1.iso',
      kickstart: 'kickstart/centos-ks.cfg',
      cpus: 2,
      memory: 2048,
      disk: 20480,
    },
    // The small guest lab builds from Debian packages: boots in seconds, even without KVM.
    mini: {
      distro: 'mini',
      kickstart: 'kickstart/mini-ks.cfg',
      cpus: 1,
      memory: 256,
      disk: 64,
    },
  },
  environments: {
    demo: {
      groups: [
        { role: 'lb', image: 'mini', count: 1, service: 'lb', version: '1' },
        { role: 'worker', image: 'mini', min: 1, max: 2, service: 'hello', version: '1.0.0' },
      ],
    },
    prod: {
      groups: [
        { role: 'lb', image: 'centos9', count: 2, service: 'lb', version: '1' },
        { role: 'worker', image: 'centos9', min: 3, max: 8, service: 'hello', version: '1.0.0' },
      ],
    },
  },
});
