import { keyed, type InventoryData, type InstallWindow } from './types.js';

/**
 * Install windows: while lab expects a host to install (a build, a clone, a
 * start that recreates it), or the user opened one by hand, the host's
 * kickstart is served and its callback may pin a new host key. Outside one,
 * neither: a kickstart fetch is refused and a changed key is an alert.
 */

/** How long a window stays open when the caller does not say. */
export const DEFAULT_WINDOW_MS = 60 * 60_000;

/** Open (or extend) the window of a host. Call inside Inventory.update. */
export function openWindow(data: InventoryData, host: string, by: string, ms = DEFAULT_WINDOW_MS, now = new Date()): InstallWindow {
  data.windows ??= keyed();
  const w: InstallWindow = { opened: now.toISOString(), until: new Date(now.getTime() + ms).toISOString(), by };
  data.windows[host] = w;
  return w;
}

export function windowOf(data: InventoryData, host: string, now = new Date()): InstallWindow | undefined {
  const w = data.windows?.[host];
  return w && Date.parse(w.until) > now.getTime() ? w : undefined;
}

/** Close a host's window (its install called back, or a build was undone). */
export function closeWindow(data: InventoryData, host: string): void {
  if (data.windows) delete data.windows[host];
}
