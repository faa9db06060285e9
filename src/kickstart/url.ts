import type { Lab } from '../config/load.js';
import { providerKind } from '../providers/index.js';

/** The server's base URL as guests see it: what kickstarts and PXE files point at. */
export function guestServerUrl(lab: Lab, port = lab.config.network.serverPort): string {
  const host = lab.config.network.mode === 'user' ? providerKind(lab).userNetHost : lab.config.network.gateway;
  return `http://${host}:${port}`;
}

/** The address `lab serve` binds unless told otherwise. */
export function defaultBindAddress(lab: Lab): string {
  return lab.config.network.mode === 'user' ? '127.0.0.1' : lab.config.network.gateway;
}
