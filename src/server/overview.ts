import { existsSync, statSync } from 'node:fs';
import { bytesFrom } from '../util/files.js';
import { groupSize, hostName, type Lab } from '../config/load.js';
import type { HostRecord, InventoryData } from '../inventory/types.js';

/**
 * What the dashboard shows beyond the hosts table: each environment as its
 * groups against their bounds, and what its monitor measured and decided
 * (read from the monitor's own log, never measured again here).
 */

export interface DashboardSlot {
  name: string;
  /** Its record's state; off: declared, never started (or removed). */
  state: HostRecord['state'] | 'off';
  version?: string;
  hypervisor?: string;
}

export interface DashboardGroup {
  role: string;
  service?: string;
  version?: string;
  min: number;
  max: number;
  live: number;
  booting: number;
  slots: DashboardSlot[];
}

export interface DashboardEnv {
  name: string;
  groups: DashboardGroup[];
}

export function environmentsOf(lab: Lab, data: InventoryData): DashboardEnv[] {
  return Object.entries(lab.config.environments).map(([env, e]) => ({
    name: env,
    groups: e.groups.map((g) => {
      const slots: DashboardSlot[] = [];
      for (let i = 1; i <= groupSize(g, 'all'); i++) {
        const name = hostName(env, g.role, i);
        const r = data.hosts[name];
        slots.push({ name, state: r?.state ?? 'off', version: r?.serviceVersion, hypervisor: r?.hypervisor });
      }
      return {
        role: g.role,
        service: g.service,
        version: g.version,
        min: groupSize(g, 'min'),
        max: groupSize(g, 'all'),
        live: slots.filter((s) => s.state === 'up').length,
        booting: slots.filter((s) => s.state === 'installing').length,
        slots,
      };
    }),
  }));
}

/** One measurement of a host at a monitor cycle. */
export interface Sample {
  t: string;
  load?: number;
  latencyMs?: number;
  healthy?: boolean;
}

export interface DashboardDecision {
  time: string;
  group: string;
  action: string;
  host?: string;
  reason: string;
}

export interface DashboardMonitor {
  env: string;
  /** The policy's marks, from the monitor's start line. */
  high?: number;
  low?: number;
  lastCycle?: string;
  /** Per host, oldest first, within the window. */
  hosts: Record<string, Sample[]>;
  /** Per group, the mean load it decided on, oldest first. */
  means: Record<string, { t: string; v: number }[]>;
  /** Actions (not holds), newest last, within the window; and each group's latest decision, hold or not. */
  decisions: DashboardDecision[];
  latest: Record<string, DashboardDecision>;
}

/** The part of a monitor log looked at: its end (a day-long log at one line per 3 s is a few MB). */
const TAIL_BYTES = 1024 * 1024;
const MAX_SAMPLES = 120;
const MAX_DECISIONS = 50;

const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const str = (v: unknown) => (typeof v === 'string' ? v : undefined);

/**
 * The monitor's log (JSON lines, as `lab monitor` writes them) read as the
 * page's figures over the last windowMs: lines that are not what a monitor
 * writes are skipped, not trusted.
 */
export function monitorOf(env: string, text: string, now = Date.now(), windowMs = 3_600_000): DashboardMonitor {
  const out: DashboardMonitor = { env, hosts: {}, means: {}, decisions: [], latest: {} };
  const since = new Date(now - windowMs).toISOString();
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    let e: Record<string, unknown>;
    try {
      e = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue; // the first line of a tail cut mid-way, or a torn last one
    }
    const time = str(e.time);
    if (!time) continue;
    if (e.event === 'start' && e.policy && typeof e.policy === 'object') {
      const p = e.policy as Record<string, unknown>;
      out.high = num(p.high) ?? out.high;
      out.low = num(p.low) ?? out.low;
    }
    if (e.event !== 'decision' || time < since) continue;
    const group = str(e.group);
    const action = str(e.action);
    if (!group || !action) continue;
    const d: DashboardDecision = { time, group, action, host: str(e.host), reason: str(e.reason) ?? '' };
    out.latest[group] = d;
    out.lastCycle = time;
    if (action !== 'hold') out.decisions.push(d);
    const mean = num((e.inputs as Record<string, unknown> | undefined)?.meanLoad);
    if (mean !== undefined) (out.means[group] ??= []).push({ t: time, v: mean });
    for (const h of Array.isArray(e.hosts) ? (e.hosts as Record<string, unknown>[]) : []) {
      const name = str(h?.name);
      if (!name) continue;
      (out.hosts[name] ??= []).push({ t: time, load: num(h.load), latencyMs: num(h.latencyMs), healthy: typeof h.healthy === 'boolean' ? h.healthy : undefined });
    }
  }
  // A chart is a few dozen pixels wide: every nth sample, the newest always kept.
  const thin = <T>(xs: T[]) => (xs.length <= MAX_SAMPLES ? xs : xs.filter((_, i) => (xs.length - 1 - i) % Math.ceil(xs.length / MAX_SAMPLES) === 0));
  for (const k of Object.keys(out.hosts)) out.hosts[k] = thin(out.hosts[k]!);
  for (const k of Object.keys(out.means)) out.means[k] = thin(out.means[k]!);
  out.decisions = out.decisions.slice(-MAX_DECISIONS);
  return out;
}

/** The end of a file as text ('' when there is none); its first line may be cut short (monitorOf skips it). */
export function tailOf(file: string, bytes = TAIL_BYTES): string {
  if (!existsSync(file)) return '';
  return bytesFrom(file, Math.max(0, statSync(file).size - bytes)).toString('utf8');
}
