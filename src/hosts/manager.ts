import { readFile } from 'node:fs/promises';
import type { Inventory } from '../inventory/store.js';
import { keyed, type HostRecord } from '../inventory/types.js';
import { parseHostName, parseMac } from '../inventory/values.js';
import { sweep, type ProbeResult, type SweepOptions } from './probe.js';
import { LabError, messageOf } from '../errors.js';
import type { LabPaths } from '../project/paths.js';

/**
 * The host manager: logged hosts are every host that ever called back; the
 * current hosts are the logged ones that answered the last sweep (state up).
 */

/** Host names in the order people count them: demo-worker-2 before demo-worker-10. */
export const byName = (a: { name: string }, b: { name: string }) => a.name.localeCompare(b.name, 'en', { numeric: true });

/** Called back at least once, so its address and host key are known (an installing host has not). */
export const calledBack = (h: HostRecord | undefined): h is HostRecord => Boolean(h?.lastCallback && h.ip);

/**
 * Live: called back, and up at the last sweep (or called back since). The
 * one definition: deploy targets, the balancer's peers, env status and the
 * monitor all ask this.
 */
export const isLive = (h: HostRecord | undefined): h is HostRecord => calledBack(h) && h.state === 'up';

/** Hosts that called back at least once (an installing host has not yet). */
export async function loggedHosts(inv: Inventory): Promise<HostRecord[]> {
  const data = await inv.read();
  return Object.values(data.hosts).filter(calledBack).sort(byName);
}

export async function currentHosts(inv: Inventory): Promise<HostRecord[]> {
  return (await loggedHosts(inv)).filter(isLive);
}

export const DEFAULT_SWEEP: SweepOptions = { timeoutMs: 1000, deadlineMs: 5000, concurrency: 256 };

/** Probe every logged host; live ones become current, the others are marked down. */
export async function filterHosts(inv: Inventory, opts: SweepOptions = DEFAULT_SWEEP): Promise<ProbeResult[]> {
  const logged = await loggedHosts(inv);
  const started = new Date().toISOString();
  const results = await sweep(logged, opts);
  const now = new Date().toISOString();
  await inv.update((data) => {
    for (const r of results) {
      const h = data.hosts[r.name];
      // A host that called back while we probed is up whatever the probe said.
      if (!h || (h.lastCallback && h.lastCallback > started)) continue;
      h.state = r.alive ? 'up' : 'down';
      h.lastProbe = now;
      if (r.alive) h.lastSeen = now;
    }
  });
  return results;
}

/** Forget every host record (leases stay, so hosts keep MAC and address); the boot log is kept. */
export async function clearHosts(inv: Inventory): Promise<number> {
  return inv.update((data) => {
    const n = Object.keys(data.hosts).length;
    data.hosts = keyed();
    return n;
  });
}

interface LogEntry {
  time: string;
  name: string;
  ip: string;
  mac: string;
}

/** Lines of inventory/booted.log; a line that does not parse is skipped, not fatal. */
export async function readBootLog(paths: LabPaths): Promise<LogEntry[]> {
  let text: string;
  try {
    text = await readFile(paths.bootLog, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new LabError(`${paths.bootLog}: cannot be read: ${messageOf(e)}`);
  }
  const out: LogEntry[] = [];
  for (const line of text.split('\n')) {
    const [time, rawName, ip, rawMac] = line.trim().split(/\s+/);
    const name = parseHostName(rawName);
    const mac = parseMac(rawMac);
    if (time && !Number.isNaN(Date.parse(time)) && name && ip && mac) out.push({ time, name, ip, mac });
  }
  return out;
}

/**
 * Start over from the boot log, the record that is never cleared: every host
 * in it is logged again (records still in the database keep their host keys
 * and roles), then filtered.
 */
export async function resetHosts(inv: Inventory, paths: LabPaths, opts: SweepOptions = DEFAULT_SWEEP): Promise<ProbeResult[]> {
  const entries = await readBootLog(paths);
  await inv.update((data) => {
    const counts = new Map<string, number>();
    for (const e of entries) counts.set(e.name, (counts.get(e.name) ?? 0) + 1);
    for (const e of entries) {
      // An image VM's boots go back to its own record, not among the hosts.
      const records = data.imageVms[e.name] || data.images[e.name] ? data.imageVms : data.hosts;
      const h = records[e.name];
      if (h && h.lastCallback && h.lastCallback > e.time) continue;
      records[e.name] = {
        ...(h ?? { firstSeen: e.time, state: 'up' as const }),
        name: e.name,
        ip: e.ip,
        mac: e.mac,
        lastCallback: e.time,
        lastSeen: h && h.lastSeen > e.time ? h.lastSeen : e.time,
        bootCount: Math.max(h?.bootCount ?? 0, counts.get(e.name)!),
      } as HostRecord;
    }
  });
  return filterHosts(inv, opts);
}
