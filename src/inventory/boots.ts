import { allKeys, keyFingerprint, keyType } from './values.js';
import type { DeclaredHost } from '../config/load.js';
import { MAX_ALERTS, MAX_EVENTS, machineRecord, recordsOf, type Alert, type BootEvent, type HostRecord, type InstallStage, type InventoryData } from './types.js';
import type { LogSink } from './store.js';
import { closeWindow, windowOf } from './windows.js';
import { unwatched } from './journal.js';

/** A validated boot callback (see server/callback.ts for the parsing). */
export interface Callback {
  host: string;
  mac: string;
  ip: string;
  hostKey?: string;
  /** Its keys of other types, offered alongside. */
  otherKeys?: string[];
  /**
   * The install stage it reports: started (from %pre: no boot, no key),
   * installed (from %post), up (the installed system booted). None: a boot,
   * which is the installed system's first when the install had reached installed.
   */
  stage?: InstallStage;
}

/** What a callback is checked against beyond its token. */
export interface CallbackRules {
  /** The host as environments.ts declares it; undefined for a host made by hand. */
  declared?: DeclaredHost;
  /** On a bridged lab a host's address is its lease; with user networking the guest's own word. */
  bridged: boolean;
  /** The address the request came from. */
  peer: string;
  /** How many hosts not declared in environments.ts may be recorded (0: none). */
  undeclared: number;
}

export type Accepted = { ok: true; host: HostRecord } | { ok: false; status: 403 | 409; error: string };

function pushEvent(data: InventoryData, e: BootEvent): void {
  data.events.push(e);
  if (data.events.length > MAX_EVENTS) data.events.splice(0, data.events.length - MAX_EVENTS);
}

/** The record of a machine, made when it has none: a declared host's or image VM's in its own place, any other in hosts. */
export function machineFor(data: InventoryData, name: string, now: string, declared?: DeclaredHost): HostRecord {
  const records = recordsOf(data, declared?.kind ?? 'host');
  const h = records[name] ?? { name, state: 'installing', firstSeen: now, lastSeen: now, bootCount: 0 };
  if (declared?.kind === 'host') {
    h.env = declared.env;
    h.role = declared.role;
    h.image = declared.image;
  }
  records[name] = h;
  return h;
}

/** Keep an alert (and a line in the boot log): shown by `lab hosts logged` and the dashboard. */
export function raiseAlert(data: InventoryData, log: LogSink, alert: Alert): void {
  data.alerts ??= [];
  data.alerts.push(alert);
  if (data.alerts.length > MAX_ALERTS) data.alerts.splice(0, data.alerts.length - MAX_ALERTS);
  // "!" keeps the line out of what `lab hosts reset` reads back as boots.
  log(`${alert.time} !alert ${alert.kind} ${alert.host}: ${alert.detail.replace(/[\r\n]+/g, ' ')}`);
}

/**
 * A kickstart fetch inside the host's install window is the installer
 * starting: the host is installing from now. The MAC a request claims is not
 * taken: the lease (or the callback) is the host's MAC.
 */
export function recordKickstartFetch(data: InventoryData, declared: DeclaredHost, peer: { ip: string; mac?: string }, now = new Date()): void {
  const t = now.toISOString();
  const h = machineFor(data, declared.name, t, declared);
  h.state = 'installing';
  h.installStarted = t;
  h.lastSeen = t;
  pushEvent(data, { time: t, kind: 'kickstart', host: h.name, ip: peer.ip, mac: peer.mac });
}

/** One line of inventory/booted.log: time, name, IP, MAC; made for `tail -f`. */
export function bootLogLine(t: string, cb: Callback): string {
  return `${t} ${cb.host} ${cb.ip} ${cb.mac}`;
}

/**
 * Undeclared hosts recorded, per hosts map: counting them all at every
 * callback made a storm of new hosts quadratic (85 ms of 1,000 callbacks).
 * The kept figure can only be too high (a host deleted since), never too
 * low, so it is counted again before it refuses.
 */
const undeclared = new WeakMap<object, number>();
function undeclaredCount(data: InventoryData, limit: number): number {
  const kept = undeclared.get(data.hosts);
  if (kept !== undefined && kept < limit) return kept;
  const count = Object.values(unwatched(data.hosts)).filter((h) => h.env === undefined).length;
  undeclared.set(data.hosts, count);
  return count;
}

/**
 * Record a callback whose token was good for its host, if what it says fits
 * what lab knows: its lease's MAC (and address, on a bridge), and its pinned
 * host key, which changes only inside an install window lab opened. A
 * callback that does not fit changes nothing but an alert.
 */
export function acceptCallback(data: InventoryData, log: LogSink, cb: Callback, rules: CallbackRules, now = new Date()): Accepted {
  const t = now.toISOString();
  const existing = machineRecord(data, cb.host);
  const refuse = (status: 403 | 409, error: string): Accepted => {
    raiseAlert(data, log, { time: t, host: cb.host, kind: 'callback-refused', detail: `from ${rules.peer}: ${error}` });
    return { ok: false, status, error };
  };
  if (!rules.declared && !existing) {
    if (rules.undeclared <= 0) return refuse(403, `${cb.host} is not declared in environments.ts (lab serve --undeclared N records up to N hosts made by hand)`);
    const count = undeclaredCount(data, rules.undeclared);
    if (count >= rules.undeclared) return refuse(403, `${cb.host} is not declared in environments.ts, and ${count} undeclared hosts are recorded already (--undeclared ${rules.undeclared})`);
  }
  const lease = data.leases[cb.host];
  if (lease && lease.mac !== cb.mac) return refuse(409, `MAC ${cb.mac} is not ${cb.host}'s (its lease has ${lease.mac})`);
  let ip = cb.ip;
  if (rules.bridged && lease?.ip) {
    if (cb.ip !== lease.ip || rules.peer !== lease.ip) return refuse(409, `address ${cb.ip} (calling from ${rules.peer}) is not ${cb.host}'s lease ${lease.ip}`);
    ip = lease.ip;
  }
  const window = windowOf(data, cb.host, now);
  if (cb.stage === 'started') {
    // Only an install lab expects may say it started: else any holder of a host's token could make a live host "installing".
    if (!window) return refuse(409, `${cb.host} reports an install started, but no install window is open for it (lab opens one when it builds or starts it; \`lab kickstart --allow ${cb.host}\` for an install you start yourself)`);
    return installStarted(data, log, cb, rules, ip, t);
  }
  const changed = window ? undefined : changedKey(existing, cb);
  if (changed) {
    existing!.refusedKey = { key: cb.hostKey!, ...(cb.otherKeys?.length ? { otherKeys: cb.otherKeys } : {}), time: t, from: rules.peer };
    const detail = `offered ${keyFingerprint(changed.offered)}, pinned ${keyFingerprint(changed.pinned)}: refused and not used; if you reinstalled it yourself, accept it with \`lab hosts rekey ${cb.host}\``;
    raiseAlert(data, log, { time: t, host: cb.host, kind: 'host-key-changed', detail });
    return { ok: false, status: 409, error: `host key of ${cb.host} changed: ${detail}` };
  }
  const h = machineFor(data, cb.host, t, rules.declared);
  if (!rules.declared && !existing) undeclared.set(data.hosts, (undeclared.get(data.hosts) ?? 0) + 1);
  h.mac = cb.mac;
  h.ip = ip;
  if (cb.hostKey) {
    pinKeys(h, cb, Boolean(window));
    delete h.refusedKey;
  }
  h.state = 'up';
  h.lastSeen = t;
  h.lastCallback = t;
  h.bootCount += 1;
  // The install under way (its %pre called back), or, without a %pre callback, the kickstart's fetch as its start.
  if (cb.stage === 'installed') h.stages = { ...(h.stages && !h.stages.installed ? h.stages : h.installStarted ? { started: h.installStarted } : {}), installed: t };
  else if (h.stages?.installed && !h.stages.up) h.stages.up = t;
  // The install this window was opened for has called back: it is over.
  if (window) closeWindow(data, cb.host);
  pushEvent(data, { time: t, kind: 'callback', host: h.name, ip, mac: cb.mac });
  log(bootLogLine(t, { ...cb, ip }));
  return { ok: true, host: h };
}

/** An offered key of a type already pinned, with another blob: the host is not the one pinned (or was reinstalled). */
function changedKey(existing: HostRecord | undefined, cb: Callback): { offered: string; pinned: string } | undefined {
  if (!existing?.hostKey || !cb.hostKey) return undefined;
  const pinned = allKeys(existing);
  const offered = allKeys(cb);
  for (const key of offered) {
    const same = pinned.find((k) => keyType(k) === keyType(key));
    if (same !== undefined && same !== key) return { offered: key, pinned: same };
  }
  // A host that no longer offers a key of the type lab pins for itself (its ed25519 gone) changed its key as well.
  if (!offered.some((k) => keyType(k) === keyType(existing.hostKey!))) return { offered: cb.hostKey, pinned: existing.hostKey };
  return undefined;
}

/**
 * Inside an install window the keys offered are the host's, all of them.
 * Outside one, only the keys already pinned are (changedKey refused any
 * other of their types): a key of a new type is not pinned then, since a
 * copied token would otherwise add a key of its own for clients to trust.
 */
function pinKeys(h: HostRecord, cb: Callback, inWindow: boolean): void {
  if (inWindow || !h.hostKey) {
    h.hostKey = cb.hostKey;
    if (cb.otherKeys?.length) h.otherKeys = cb.otherKeys;
    else delete h.otherKeys;
  }
}

/**
 * An installer's %pre saying it runs: the host is installing, from now (a
 * new install: the stages of an older one are dropped). Not a boot: no
 * count, no key, the install window stays open for the callback that ends it.
 */
function installStarted(data: InventoryData, log: LogSink, cb: Callback, rules: CallbackRules, ip: string, t: string): Accepted {
  if (!rules.declared && !machineRecord(data, cb.host)) undeclared.set(data.hosts, (undeclared.get(data.hosts) ?? 0) + 1);
  const h = machineFor(data, cb.host, t, rules.declared);
  h.mac = cb.mac;
  h.state = 'installing';
  h.lastSeen = t;
  h.stages = { started: t };
  pushEvent(data, { time: t, kind: 'stage', stage: 'started', host: h.name, ip, mac: cb.mac });
  // "!" keeps the line out of what `lab hosts reset` reads back as boots.
  log(`${t} !stage started ${h.name} ${ip} ${cb.mac}`);
  return { ok: true, host: h };
}
