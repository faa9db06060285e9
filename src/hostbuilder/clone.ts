import { declaredHost, type Lab } from '../config/load.js';
import type { Inventory } from '../inventory/store.js';
import type { Lease } from '../inventory/types.js';
import { leasesFor } from '../kickstart/hosts.js';
import { openWindow } from '../inventory/windows.js';
import type { Provider } from '../providers/types.js';
import { LabError, UsageError } from '../errors.js';
import { bootFiles } from './build.js';
import { imageDistro } from '../distros/index.js';
import { recordReach, vmSpecFor } from './build.js';

/**
 * A linked clone of a built VM as a declared host: its own MAC and address
 * (its lease), and at its first boot its own name and host key (lab.host=).
 */
export async function cloneHost(lab: Lab, inventory: Inventory, provider: Provider, source: string, name: string): Promise<Lease> {
  const src = await provider.info(source);
  if (src.state === 'missing') throw new UsageError(`no VM "${source}"`, `build it first: \`lab image build ${source}\``);
  const host = declaredHost(lab, name);
  const srcHost = declaredHost(lab, source);
  const distro = imageDistro(lab, srcHost.image);
  if (distro.hostsAre !== 'clones') {
    throw new LabError(`a ${distro.name} image cannot be cloned: a clone would keep ${source}'s name and host key; its hosts install as themselves (lab env start-all does)`);
  }
  const files = await bootFiles(lab, host.image, () => undefined);
  const lease = (await leasesFor(lab, inventory, [host])).get(name)!;
  const spec = await vmSpecFor(lab, host, lease, files);
  // The clone makes a new host key at its first boot: the callback that brings it may pin it.
  await inventory.update((d) => openWindow(d, name, 'clone'));
  await recordReach(inventory, host, await provider.clone(source, spec));
  return lease;
}
