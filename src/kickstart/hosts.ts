import { mkdir } from 'node:fs/promises';
import { storageError, writeFileAtomic } from '../util/files.js';
import { within } from '../project/paths.js';
import path from 'node:path';
import { declaredHost, type Lab, type DeclaredHost } from '../config/load.js';
import type { Inventory } from '../inventory/store.js';
import type { Lease } from '../inventory/types.js';
import { asUsed, leaseFor, refuseStaleLeases, refuseTakenAddress } from '../inventory/leases.js';
import { ensureSecrets } from '../project/secrets.js';
import { guestServerUrl } from './url.js';
import { hostContext, type Serving } from './context.js';
import { renderTemplate } from './render.js';

/** What templates point guests at when no server is running: the configured port. */
export function offlineServing(lab: Lab): Serving {
  const s = ensureSecrets(lab.paths, lab.config.name);
  return { serverUrl: guestServerUrl(lab), secret: s.secret, publicKey: s.publicKey };
}

/** Leases for these hosts, allocating the missing ones in one inventory write. */
export async function leasesFor(lab: Lab, inventory: Inventory, hosts: DeclaredHost[]): Promise<Map<string, Lease>> {
  const data = await inventory.read();
  const ready = (l: Lease | undefined) => l && (lab.config.network.mode !== 'bridge' || l.ip);
  if (hosts.every((h) => ready(data.leases[h.name]))) {
    refuseStaleLeases(data, lab);
    return new Map(hosts.map((h) => [h.name, asUsed(lab, refuseTakenAddress(lab, h.name, data.leases[h.name]!))]));
  }
  return inventory.update((data) => new Map(hosts.map((h) => [h.name, leaseFor(data, lab, h.name)])));
}

export function renderKickstartWith(lab: Lab, host: DeclaredHost, lease: Lease, serving: Serving): string {
  const image = lab.config.images[host.image]!;
  return renderTemplate(lab, image.kickstart, hostContext(lab, host, lease, serving));
}

/** The kickstart a declared host gets from GET /ks/<host>. */
export async function renderKickstart(lab: Lab, inventory: Inventory, name: string, serving: Serving): Promise<string> {
  const host = declaredHost(lab, name);
  const leases = await leasesFor(lab, inventory, [host]);
  return renderKickstartWith(lab, host, leases.get(host.name)!, serving);
}

/** One <host>.cfg per declared host in outDir; returns the files written. */
export async function writeKickstarts(lab: Lab, inventory: Inventory, serving: Serving, outDir: string): Promise<string[]> {
  const leases = await leasesFor(lab, inventory, lab.hosts);
  // Render all first: a template error writes nothing.
  const files = lab.hosts.map((h) => ({
    file: path.join(outDir, `${h.name}.cfg`),
    text: renderKickstartWith(lab, h, leases.get(h.name)!, serving),
  }));
  try {
    await mkdir(outDir, { recursive: true });
  } catch (e) {
    throw storageError(outDir, e);
  }
  // Inside the lab folder, the folder keeps itself out of git: the files hold callback tokens.
  if (within(lab.paths.dir, path.resolve(outDir)) !== undefined) {
    await writeFileAtomic(path.join(outDir, '.gitignore'), '# Written by lab kickstart --out: these kickstarts hold callback tokens.\n*\n', 0o644);
  }
  for (const f of files) await writeFileAtomic(f.file, f.text);
  return files.map((f) => f.file);
}
