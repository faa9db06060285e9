/**
 * The scaling policy, pure: observations and the clock in, decisions and the
 * next state out. Shaped after what works in Kubernetes' autoscaler and AWS
 * target tracking: a change needs the signal to hold for several intervals,
 * a cooldown follows every change, hosts still booting count as capacity on
 * its way, and missing figures never cause a scale-down.
 */

export interface PolicyConfig {
  /** Mean load (1-minute load average per CPU) above which a group grows. */
  high: number;
  /** Mean load below which a group shrinks. */
  low: number;
  /** Intervals the mean must stay beyond a mark before acting. */
  sustain: number;
  /** No load-driven change within this long after the last one. */
  cooldownMs: number;
  /** Failed health checks in a row after which a host is replaced. */
  unhealthyAfter: number;
  /**
   * After REPLACE_FREE replacements of one host that never brought it back
   * healthy, the next waits this long, doubling each time (up to BACKOFF_MAX_MS).
   */
  backoffMs: number;
}

export const DEFAULT_POLICY: PolicyConfig = { high: 0.7, low: 0.2, sustain: 3, cooldownMs: 60_000, unhealthyAfter: 3, backoffMs: 60_000 };

/** Replacements of one host in a row, without it coming back healthy, before the monitor backs off. */
export const REPLACE_FREE = 2;
export const BACKOFF_MAX_MS = 15 * 60_000;

/** One host slot of a scaled group, as seen this interval. */
export interface HostObservation {
  name: string;
  /** 1-based slot in its group; growth takes the lowest free one, shrinking the highest. */
  index: number;
  /**
   * live: running and called back. booting: started, no callback yet.
   * lost: a member whose VM is not running (it died, or was killed).
   * off: not a member (never started, or scaled down).
   */
  state: 'live' | 'booting' | 'lost' | 'off';
  /** Load per CPU; undefined when it could not be read this interval. */
  load?: number;
  /** The service's test passed this interval; undefined when not checked. */
  healthy?: boolean;
}

export interface GroupObservation {
  /** "<env>/<role>" */
  group: string;
  min: number;
  max: number;
  hosts: HostObservation[];
}

export interface GroupState {
  highStreak: number;
  lowStreak: number;
  /** When the group last grew or shrank (ms since epoch). */
  lastChange?: number;
  /** Failed health checks in a row, by host. */
  unhealthy: Record<string, number>;
  /** Replacements in a row that have not (yet) brought the host back healthy, by host; cleared once it is. */
  replaced?: Record<string, Replaced>;
}

export interface Replaced {
  count: number;
  /** When the last replacement was made (ms since epoch). */
  last: number;
  /** The earliest time the next replacement may be made (ms since epoch). */
  next: number;
}

/** When the next replacement of a host may be made, once it has been replaced `count` times in a row, the last at `last`. */
export function nextReplaceAt(count: number, last: number, cfg: PolicyConfig): number {
  if (count < REPLACE_FREE) return last;
  return last + Math.min(BACKOFF_MAX_MS, cfg.backoffMs * 2 ** (count - REPLACE_FREE));
}

export const emptyGroupState = (): GroupState => ({ highStreak: 0, lowStreak: 0, unhealthy: {} });

/** backoff: a host that needs replacing waits, since replacing it again and again has not helped. */
export type Action = 'scale-up' | 'scale-down' | 'replace' | 'backoff' | 'hold';

export interface Decision {
  group: string;
  action: Action;
  /** The host acted on (none for hold). */
  host?: string;
  reason: string;
  inputs: {
    live: number;
    /** Live hosts that did not fail their health check. */
    healthy: number;
    booting: number;
    capacity: number;
    min: number;
    max: number;
    meanLoad?: number;
    missingFigures: number;
    highStreak: number;
    lowStreak: number;
    cooldownLeftMs: number;
  };
}

const round = (n: number) => Math.round(n * 1000) / 1000;

export function decide(obs: GroupObservation, prev: GroupState, cfg: PolicyConfig, now: number): { decisions: Decision[]; state: GroupState } {
  const live = obs.hosts.filter((h) => h.state === 'live');
  const booting = obs.hosts.filter((h) => h.state === 'booting');
  const lost = obs.hosts.filter((h) => h.state === 'lost');
  const off = obs.hosts.filter((h) => h.state === 'off').sort((a, b) => a.index - b.index);
  const figures = live.filter((h) => h.load !== undefined).map((h) => h.load!);
  const missingFigures = live.length - figures.length;
  const meanLoad = figures.length ? round(figures.reduce((a, b) => a + b, 0) / figures.length) : undefined;

  const unhealthy = live.filter((h) => h.healthy === false);
  const healthy = live.length - unhealthy.length;
  const state: GroupState = { ...prev, unhealthy: {}, replaced: { ...prev.replaced } };
  const replaced = state.replaced!;
  for (const h of unhealthy) state.unhealthy[h.name] = (prev.unhealthy[h.name] ?? 0) + 1;
  // Back and healthy: whatever was replaced before worked.
  for (const h of live) if (h.healthy !== false) delete replaced[h.name];
  // Not a member any more: nothing to replace.
  for (const h of obs.hosts) if (h.state === 'off') delete replaced[h.name];
  // Streaks only grow on a full set of figures above (or below) the mark.
  state.highStreak = meanLoad !== undefined && meanLoad > cfg.high ? prev.highStreak + 1 : 0;
  state.lowStreak = meanLoad !== undefined && missingFigures === 0 && meanLoad < cfg.low ? prev.lowStreak + 1 : 0;

  const capacity = live.length + booting.length;
  const cooldownLeftMs = prev.lastChange === undefined ? 0 : Math.max(0, prev.lastChange + cfg.cooldownMs - now);
  const inputs = (): Decision['inputs'] => ({
    live: live.length,
    healthy,
    booting: booting.length,
    capacity,
    min: obs.min,
    max: obs.max,
    meanLoad,
    missingFigures,
    highStreak: state.highStreak,
    lowStreak: state.lowStreak,
    cooldownLeftMs,
  });
  const decisions: Decision[] = [];
  const make = (action: Action, reason: string, host?: string): Decision => ({ group: obs.group, action, host, reason, inputs: inputs() });

  // Health first: a member that died or keeps failing is replaced, whatever the load,
  // unless replacing it has not helped REPLACE_FREE times in a row: then it waits, longer each time.
  const replace = (h: HostObservation, reason: string) => {
    const r = replaced[h.name];
    if (r && r.next > now) {
      decisions.push(make('backoff', `${reason}; replaced ${r.count} times in a row without coming back healthy: next try in ${Math.ceil((r.next - now) / 1000)} s`, h.name));
      return false;
    }
    const count = (r?.count ?? 0) + 1;
    decisions.push(make('replace', r ? `${reason} (replacement ${count} in a row)` : reason, h.name));
    replaced[h.name] = { count, last: now, next: nextReplaceAt(count, now, cfg) };
    return true;
  };
  for (const h of lost) replace(h, 'its VM is not running');
  for (const h of live) {
    const n = state.unhealthy[h.name] ?? 0;
    if (n >= cfg.unhealthyAfter && replace(h, `failed its health check ${n} intervals in a row`)) state.unhealthy[h.name] = 0;
  }

  // Bounds are kept without waiting for streaks or cooldowns. Lost members count: they are being replaced.
  const members = capacity + lost.length;
  if (members < obs.min && off.length) {
    decisions.push(make('scale-up', `below min: ${members} < ${obs.min}`, off[0]!.name));
    state.lastChange = now;
  } else if (members > obs.max) {
    // A failing host goes first; then the highest slot.
    const victim = [...live].sort((a, b) => Number(b.healthy === false) - Number(a.healthy === false) || b.index - a.index)[0];
    if (victim) {
      decisions.push(make('scale-down', `above max: ${members} > ${obs.max}`, victim.name));
      state.lastChange = now;
    }
  } else if (state.highStreak >= cfg.sustain) {
    if (capacity >= obs.max) decisions.push(make('hold', `load ${meanLoad} above ${cfg.high}, but at max ${obs.max}`));
    else if (cooldownLeftMs > 0) decisions.push(make('hold', `load ${meanLoad} above ${cfg.high}, cooling down (${Math.ceil(cooldownLeftMs / 1000)} s left)`));
    else if (off.length) {
      decisions.push(make('scale-up', `load ${meanLoad} above ${cfg.high} for ${state.highStreak} intervals`, off[0]!.name));
      state.lastChange = now;
      state.highStreak = 0;
    }
  } else if (state.lowStreak >= cfg.sustain) {
    // Only healthy hosts are capacity to give up: never shrink while another member is down, failing or on its way.
    if (capacity <= obs.min) decisions.push(make('hold', `load ${meanLoad} below ${cfg.low}, but at min ${obs.min}`));
    else if (lost.length) decisions.push(make('hold', `load ${meanLoad} below ${cfg.low}, but ${lost.map((h) => h.name).join(', ')} lost`));
    else if (unhealthy.length) decisions.push(make('hold', `load ${meanLoad} below ${cfg.low}, but ${unhealthy.map((h) => h.name).join(', ')} failing its health check`));
    else if (booting.length) decisions.push(make('hold', `load ${meanLoad} below ${cfg.low}, but ${booting.length} host(s) still booting`));
    else if (cooldownLeftMs > 0) decisions.push(make('hold', `load ${meanLoad} below ${cfg.low}, cooling down (${Math.ceil(cooldownLeftMs / 1000)} s left)`));
    else {
      const victim = [...live].sort((a, b) => b.index - a.index)[0]!;
      decisions.push(make('scale-down', `load ${meanLoad} below ${cfg.low} for ${state.lowStreak} intervals`, victim.name));
      state.lastChange = now;
      state.lowStreak = 0;
    }
  }
  if (decisions.length === 0) {
    const why =
      meanLoad === undefined
        ? 'no load figures'
        : missingFigures
          ? `load ${meanLoad}, ${missingFigures} host(s) without figures: no scale-down`
          : `load ${meanLoad} within ${cfg.low}..${cfg.high} (or not for ${cfg.sustain} intervals yet)`;
    decisions.push(make('hold', why));
  }
  return { decisions, state };
}
