import type { Inventory } from '../inventory/store.js';
import { raiseAlert } from '../inventory/boots.js';
import { keyFingerprint } from '../inventory/values.js';
import { openWindow, windowOf } from '../inventory/windows.js';
import { machineRecord, type InstallWindow } from '../inventory/types.js';
import { UsageError } from '../errors.js';

/**
 * What a person does about trust by hand: open a host's install window
 * (its kickstart served, a new host key accepted at its callback), or accept
 * a host key that was refused.
 */

/** `lab kickstart --allow <host>`: the host may fetch its kickstart and pin a new key for `minutes`. */
export async function allowInstall(inv: Inventory, host: string, minutes: number): Promise<InstallWindow> {
  return inv.update((d) => openWindow(d, host, 'allow', minutes * 60_000));
}

export type Rekeyed = { kind: 'accepted'; fingerprint: string } | { kind: 'window'; until: string };

/**
 * `lab hosts rekey <host>`: accept the keys the host offered and were refused
 * (they become the pinned ones); with none refused, accept whatever key its
 * next callback brings, within the next `minutes`.
 */
export async function rekey(inv: Inventory, host: string, minutes: number): Promise<Rekeyed> {
  return inv.update((d, log) => {
    const h = machineRecord(d, host);
    if (!h) throw new UsageError(`no host "${host}" has called back`, 'see `lab hosts logged`');
    const now = new Date().toISOString();
    if (h.refusedKey) {
      const was = h.hostKey ? keyFingerprint(h.hostKey) : 'none';
      h.hostKey = h.refusedKey.key;
      if (h.refusedKey.otherKeys?.length) h.otherKeys = h.refusedKey.otherKeys;
      else delete h.otherKeys;
      delete h.refusedKey;
      raiseAlert(d, log, { time: now, host, kind: 'host-key-changed', detail: `accepted by hand (lab hosts rekey): now ${keyFingerprint(h.hostKey)}, was ${was}` });
      return { kind: 'accepted', fingerprint: keyFingerprint(h.hostKey) };
    }
    const w = windowOf(d, host) ?? openWindow(d, host, 'rekey', minutes * 60_000);
    return { kind: 'window', until: w.until };
  });
}
