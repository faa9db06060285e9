import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decide, emptyGroupState, type Decision, type GroupState, type HostObservation, type PolicyConfig } from '../src/monitor/policy.js';

/**
 * The scaling policy on load series, fast: a small simulated group where a
 * scale-up boots a host for one interval before it is live, and the clock is
 * the interval count. Series are shaped as a 1-minute load average is
 * (exponential rise and decay), with noise where the test says so.
 */

const cfg: PolicyConfig = { high: 0.7, low: 0.2, sustain: 3, cooldownMs: 30_000, unhealthyAfter: 3 };
const INTERVAL = 10_000;

interface Sim {
  decisions: Decision[];
  /** The interval of each decision. */
  at: number[];
  /** Live + booting hosts after each interval. */
  sizes: number[];
}

/** Run a series of per-interval loads (the same for every live host, or per host) through the policy. */
function simulate(loads: (number | undefined | ((host: string) => number | undefined))[], opts: { min: number; max: number; start: number; health?: (i: number, host: string) => boolean | undefined; policy?: PolicyConfig }): Sim {
  const names = Array.from({ length: opts.max }, (_, i) => `demo-worker-${i + 1}`);
  const states = new Map<string, HostObservation['state']>(names.map((n, i) => [n, i < opts.start ? 'live' : 'off']));
  let state: GroupState = emptyGroupState();
  const sim: Sim = { decisions: [], at: [], sizes: [] };
  loads.forEach((load, i) => {
    const hosts: HostObservation[] = names.map((name, k) => {
      const s = states.get(name)!;
      const l = typeof load === 'function' ? load(name) : load;
      return { name, index: k + 1, state: s, load: s === 'live' ? l : undefined, healthy: s === 'live' ? opts.health?.(i, name) : undefined };
    });
    // Booting hosts come up by the next interval.
    for (const [n, s] of states) if (s === 'booting') states.set(n, 'live');
    const r = decide({ group: 'demo/worker', min: opts.min, max: opts.max, hosts }, state, opts.policy ?? cfg, i * INTERVAL);
    state = r.state;
    for (const d of r.decisions) {
      sim.decisions.push(d);
      sim.at.push(i);
      if (d.action === 'scale-up' || d.action === 'replace') states.set(d.host!, 'booting');
      if (d.action === 'scale-down') states.set(d.host!, 'off');
    }
    sim.sizes.push([...states.values()].filter((s) => s !== 'off').length);
  });
  return sim;
}

const rise = (n: number, from: number, to: number, tau = 3) => Array.from({ length: n }, (_, i) => to + (from - to) * Math.exp(-(i + 1) / tau));
const changes = (s: Sim) => s.decisions.filter((d) => d.action !== 'hold');
// A fixed pseudo-random noise, so the series are the same on every run.
const noise = (i: number) => ((Math.sin(i * 12.9898) * 43758.5453) % 1) * 0.1;

test('sustained high load grows the group one host at a time, after the sustain count and each cooldown, never past max', () => {
  const policy = { ...cfg, cooldownMs: 60_000 };
  const sim = simulate([...rise(5, 0.1, 1.2), ...Array(20).fill(1.2)], { min: 2, max: 4, start: 2, policy });
  const ups = changes(sim);
  assert.deepEqual(ups.map((d) => [d.action, d.host]), [['scale-up', 'demo-worker-3'], ['scale-up', 'demo-worker-4']]);
  assert.ok(ups[0]!.inputs.highStreak >= cfg.sustain);
  // The second waited out the cooldown (6 intervals of 10 s) after the first, holding meanwhile.
  const [first, second] = ups.map((d) => sim.at[sim.decisions.indexOf(d)]!);
  assert.ok(second! - first! >= 6, `${first} ${second}`);
  assert.ok(sim.decisions.some((d) => d.action === 'hold' && /cooling down/.test(d.reason)));
  assert.equal(Math.max(...sim.sizes), 4);
  assert.ok(sim.decisions.some((d) => d.action === 'hold' && /at max 4/.test(d.reason)));
});

test('noisy load around the high mark and flapping load never change the group', () => {
  const noisy = Array.from({ length: 40 }, (_, i) => (i % 3 === 2 ? 0.64 : 0.72 + noise(i) / 2));
  assert.deepEqual(changes(simulate(noisy, { min: 2, max: 4, start: 2 })), []);
  const flapping = Array.from({ length: 40 }, (_, i) => (i % 2 ? 0.95 : 0.05));
  const sim = simulate(flapping, { min: 2, max: 4, start: 3 });
  assert.deepEqual(changes(sim), []);
  assert.deepEqual([...new Set(sim.sizes)], [3]);
});

test('idle hosts are scaled down to min, one at a time with cooldowns, never below', () => {
  const sim = simulate([...rise(6, 0.9, 0.02), ...Array(30).fill(0.02)], { min: 2, max: 4, start: 4 });
  assert.deepEqual(changes(sim).map((d) => [d.action, d.host]), [['scale-down', 'demo-worker-4'], ['scale-down', 'demo-worker-3']]);
  assert.equal(sim.sizes.at(-1), 2);
  assert.ok(sim.decisions.some((d) => d.action === 'hold' && /at min 2/.test(d.reason)));
});

test('a host without figures blocks a scale-down but not a scale-up; booting hosts count as capacity', () => {
  const oneMissing = (low: number) => (h: string) => (h === 'demo-worker-1' ? undefined : low);
  assert.deepEqual(changes(simulate(Array(20).fill(oneMissing(0.01)), { min: 1, max: 4, start: 3 })), []);
  const up = changes(simulate(Array(6).fill(oneMissing(1.5)), { min: 1, max: 4, start: 2 }));
  assert.equal(up[0]?.action, 'scale-up');
  // At max with one still booting: hold, the booting host is the capacity on its way.
  const r = decide(
    {
      group: 'demo/worker',
      min: 1,
      max: 3,
      hosts: [
        { name: 'w1', index: 1, state: 'live', load: 2 },
        { name: 'w2', index: 2, state: 'live', load: 2 },
        { name: 'w3', index: 3, state: 'booting' },
      ],
    },
    { ...emptyGroupState(), highStreak: 5 },
    cfg,
    1e9,
  );
  assert.deepEqual(r.decisions.map((d) => [d.action, d.inputs.capacity]), [['hold', 3]]);
  // Low load while one boots: no scale-down yet.
  const low = decide(
    { group: 'demo/worker', min: 1, max: 3, hosts: [{ name: 'w1', index: 1, state: 'live', load: 0 }, { name: 'w2', index: 2, state: 'booting' }, { name: 'w3', index: 3, state: 'off' }] },
    { ...emptyGroupState(), lowStreak: 9 },
    cfg,
    1e9,
  );
  assert.match(low.decisions[0]!.reason, /still booting/);
});

test('a lost member is replaced at once; a failing one after N checks; below min grows at once', () => {
  const lost = decide({ group: 'g', min: 1, max: 3, hosts: [{ name: 'w1', index: 1, state: 'live', load: 0.5 }, { name: 'w2', index: 2, state: 'lost' }] }, emptyGroupState(), cfg, 0);
  assert.deepEqual(lost.decisions.map((d) => [d.action, d.host, d.reason]), [['replace', 'w2', 'its VM is not running']]);
  const sim = simulate(Array(8).fill(0.5), { min: 2, max: 3, start: 2, health: (_i, h) => h !== 'demo-worker-2' });
  const replaced = changes(sim);
  assert.deepEqual(replaced.map((d) => [d.action, d.host]), [['replace', 'demo-worker-2'], ['replace', 'demo-worker-2']]);
  assert.match(replaced[0]!.reason, /failed its health check 3 intervals in a row/);
  const empty = decide({ group: 'g', min: 2, max: 3, hosts: [{ name: 'w1', index: 1, state: 'off' }, { name: 'w2', index: 2, state: 'off' }, { name: 'w3', index: 3, state: 'off' }] }, emptyGroupState(), cfg, 0);
  assert.deepEqual(empty.decisions.map((d) => [d.action, d.host]), [['scale-up', 'w1']]);
});

test('every decision carries its reason and inputs as one JSON line', () => {
  const r = decide({ group: 'demo/worker', min: 1, max: 2, hosts: [{ name: 'w1', index: 1, state: 'live', load: 0.4 }, { name: 'w2', index: 2, state: 'off' }] }, emptyGroupState(), cfg, 0);
  const line = JSON.stringify(r.decisions[0]);
  assert.ok(!line.includes('\n'));
  assert.deepEqual(JSON.parse(line), {
    group: 'demo/worker',
    action: 'hold',
    reason: 'load 0.4 within 0.2..0.7 (or not for 3 intervals yet)',
    inputs: { live: 1, booting: 0, capacity: 1, min: 1, max: 2, meanLoad: 0.4, missingFigures: 0, highStreak: 0, lowStreak: 0, cooldownLeftMs: 0 },
  });
});
