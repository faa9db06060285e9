import type { Lab } from '../config/load.js';
import type { DistroKind } from './types.js';
import { centos } from './centos/index.js';
import { mini } from './mini/index.js';

/** The distros lab knows, by the name environments.ts gives them (images.<name>.distro): one line each. */
export const DISTROS = {
  centos,
  mini,
} as const satisfies Record<string, DistroKind>;

export type DistroName = keyof typeof DISTROS;
export const DISTRO_NAMES = Object.keys(DISTROS) as [DistroName, ...DistroName[]];

/** The distro an image of the lab is built with. */
export function imageDistro(lab: Lab, image: string): DistroKind {
  return DISTROS[lab.config.images[image]!.distro];
}
