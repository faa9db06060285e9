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
}

export const DEFAULT_POLICY: PolicyConfig = { high: 0.7, low: 0.2, sustain: 3, cooldownMs: 60_000, unhealthyAfter: 3 };

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
}

export const emptyGroupState = (): GroupState => ({ highStreak: 0, lowStreak: 0, unhealthy: {} });

export type Action = 'scale-up' | 'scale-down' | 'replace' | 'hold';

export interface Decision {
  group: string;
  action: Action;
  /** The host acted on (none for hold). */
  host?: string;
  reason: string;
  inputs: {
    live: number;
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

  const state: GroupState = { ...prev, unhealthy: {} };
  for (const h of live) {
    if (h.healthy === false) state.unhealthy[h.name] = (prev.unhealthy[h.name] ?? 0) + 1;
  }
  // Streaks only grow on a full set of figures above (or below) the mark.
  state.highStreak = meanLoad !== undefined && meanLoad > cfg.high ? prev.highStreak + 1 : 0;
  state.lowStreak = meanLoad !== undefined && missingFigures === 0 && meanLoad < cfg.low ? prev.lowStreak + 1 : 0;

  const capacity = live.length + booting.length;
  const cooldownLeftMs = prev.lastChange === undefined ? 0 : Math.max(0, prev.lastChange + cfg.cooldownMs - now);
  const inputs = (): Decision['inputs'] => ({
    live: live.length,
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

  // Health first: a member that died or keeps failing is replaced, whatever the load.
  for (const h of lost) decisions.push(make('replace', 'its VM is not running', h.name));
  for (const h of live) {
    const n = state.unhealthy[h.name] ?? 0;
    if (n >= cfg.unhealthyAfter) {
      decisions.push(make('replace', `failed its health check ${n} intervals in a row`, h.name));
      state.unhealthy[h.name] = 0;
    }
  }

  // Bounds are kept without waiting for streaks or cooldowns. Lost members count: they are being replaced.
  const members = capacity + lost.length;
  if (members < obs.min && off.length) {
    decisions.push(make('scale-up', `below min: ${members} < ${obs.min}`, off[0]!.name));
    state.lastChange = now;
  } else if (members > obs.max) {
    const victim = [...live].sort((a, b) => b.index - a.index)[0];
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
    if (capacity <= obs.min) decisions.push(make('hold', `load ${meanLoad} below ${cfg.low}, but at min ${obs.min}`));
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
