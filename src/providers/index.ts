import type { Lab } from '../config/load.js';
import { libvirt } from './libvirt/index.js';
import { qemu } from './qemu/index.js';
import { virtualbox } from './virtualbox/index.js';
import type { Provider, ProviderKind } from './types.js';

/** The hypervisors lab drives, by the name environments.ts gives them (provider): one line each. */
export const PROVIDERS = {
  qemu,
  virtualbox,
  libvirt,
} as const satisfies Record<string, ProviderKind>;

export type ProviderName = keyof typeof PROVIDERS;
export const PROVIDER_NAMES = Object.keys(PROVIDERS) as [ProviderName, ...ProviderName[]];

export function providerKind(lab: Lab): ProviderKind {
  return PROVIDERS[lab.config.provider];
}

/** The lab's provider, ready to drive its VMs. */
export function providerFor(lab: Lab): Promise<Provider> {
  return providerKind(lab).create(lab);
}
