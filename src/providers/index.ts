import path from 'node:path';
import type { Lab } from '../config/load.js';
import { VirtualBoxProvider } from './virtualbox/provider.js';
import { QemuProvider } from './qemu/provider.js';
import type { Provider } from './types.js';

export function providerFor(lab: Lab): Provider {
  switch (lab.config.provider) {
    case 'qemu':
      return new QemuProvider(path.join(lab.paths.inventory, 'vms'));
    case 'virtualbox':
      return new VirtualBoxProvider(path.join(lab.paths.inventory, 'vbox'));
  }
}
