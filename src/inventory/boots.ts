import type { DeclaredHost } from '../config/load.js';
import { MAX_EVENTS, type BootEvent, type HostRecord, type InventoryData } from './types.js';
import type { LogSink } from './store.js';

/** A validated boot callback (see server/callback.ts for the parsing). */
export interface Callback {
  host: string;
  mac: string;
  ip: string;
  hostKey?: string;
}

function pushEvent(data: InventoryData, e: BootEvent): void {
  data.events.push(e);
  if (data.events.length > MAX_EVENTS) data.events.splice(0, data.events.length - MAX_EVENTS);
}

function hostFor(data: InventoryData, name: string, now: string, declared?: DeclaredHost): HostRecord {
  const h = data.hosts[name] ?? { name, state: 'installing', firstSeen: now, lastSeen: now, bootCount: 0 };
  if (declared) {
    h.env = declared.env;
    h.role = declared.role;
    h.image = declared.image;
  }
  data.hosts[name] = h;
  return h;
}

/** The kickstart fetch is the installer starting: the host is installing from now. */
export function recordKickstartFetch(
  data: InventoryData,
  declared: DeclaredHost,
  peer: { ip: string; mac?: string },
  now = new Date(),
): void {
  const t = now.toISOString();
  const h = hostFor(data, declared.name, t, declared);
  h.state = 'installing';
  h.installStarted = t;
  h.lastSeen = t;
  if (peer.mac) h.mac = peer.mac;
  pushEvent(data, { time: t, kind: 'kickstart', host: h.name, ip: peer.ip, mac: peer.mac });
}

/** One line of inventory/booted.log: time, name, IP, MAC; made for `tail -f`. */
export function bootLogLine(t: string, cb: Callback): string {
  return `${t} ${cb.host} ${cb.ip} ${cb.mac}`;
}

export function recordCallback(
  data: InventoryData,
  log: LogSink,
  cb: Callback,
  declared: DeclaredHost | undefined,
  now = new Date(),
): HostRecord {
  const t = now.toISOString();
  const h = hostFor(data, cb.host, t, declared);
  h.mac = cb.mac;
  h.ip = cb.ip;
  if (cb.hostKey) h.hostKey = cb.hostKey;
  h.state = 'up';
  h.lastSeen = t;
  h.lastCallback = t;
  h.bootCount += 1;
  pushEvent(data, { time: t, kind: 'callback', host: h.name, ip: cb.ip, mac: cb.mac });
  log(bootLogLine(t, cb));
  return h;
}
