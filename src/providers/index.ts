import path from 'node:path';
import type { Lab } from '../config/load.js';
import { EnvironmentError } from '../errors.js';
import { QemuProvider } from './qemu/provider.js';
import type { Provider } from './types.js';

export function providerFor(lab: Lab): Provider {
  switch (lab.config.provider) {
    case 'qemu':
      return new QemuProvider(path.join(lab.paths.inventory, 'vms'));
    case 'virtualbox':
      throw new EnvironmentError('the virtualbox provider is not available in this version of lab', "use provider: 'qemu' in environments.ts");
  }
}
