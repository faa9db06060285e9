import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decide, emptyGroupState, type Decision, type GroupState, type HostObservation, type PolicyConfig } from '../../src/monitor/policy.js';

/**
 * The scaling policy on load series, fast: a small simulated group where a
 * scale-up boots a host for one interval before it is live, and the clock is
 * the interval count. Series are shaped as a 1-minute load average is
 * (exponential rise and decay), with noise where the test says so.
 */

const cfg: PolicyConfig = { high: 0.7, low: 0.2, sustain: 3, cooldownMs: 30_000, unhealthyAfter: 3, backoffMs: 60_000 };
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
    inputs: { live: 1, healthy: 1, booting: 0, capacity: 1, min: 1, max: 2, meanLoad: 0.4, missingFigures: 0, highStreak: 0, lowStreak: 0, cooldownLeftMs: 0 },
  });
});

test('a healthy host is never scaled down while another member is lost, failing or booting; only healthy hosts are capacity to give up', () => {
  const idle = { ...emptyGroupState(), lowStreak: 9 };
  const group = (w1: Partial<HostObservation>): HostObservation[] => [
    { name: 'w1', index: 1, state: 'live', load: 0.01, healthy: true, ...w1 },
    { name: 'w2', index: 2, state: 'live', load: 0.01, healthy: true },
  ];
  // The run the issue describes: w1 dead (being replaced), w2 the one healthy worker and idle.
  const lost = decide({ group: 'demo/worker', min: 1, max: 2, hosts: group({ state: 'lost', load: undefined, healthy: undefined }) }, idle, cfg, 1e9);
  assert.deepEqual(lost.decisions.map((d) => [d.action, d.host]), [['replace', 'w1'], ['hold', undefined]]);
  assert.match(lost.decisions[1]!.reason, /but at min 1$/);
  // w1 failing its check (its figures read fine): w2 stays; only it is healthy capacity.
  const failing = decide({ group: 'demo/worker', min: 1, max: 2, hosts: group({ healthy: false }) }, idle, cfg, 1e9);
  assert.deepEqual(failing.decisions.map((d) => [d.action, d.inputs.healthy]), [['hold', 1]]);
  assert.match(failing.decisions[0]!.reason, /but w1 failing its health check$/);
  // With room above min, a failing member still blocks the scale-down.
  const three = decide(
    { group: 'demo/worker', min: 1, max: 3, hosts: [...group({ healthy: false }), { name: 'w3', index: 3, state: 'live', load: 0.01, healthy: true }] },
    idle,
    cfg,
    1e9,
  );
  assert.deepEqual(three.decisions.map((d) => d.action), ['hold']);
  assert.match(three.decisions[0]!.reason, /but w1 failing its health check$/);
  // All healthy: the highest slot goes, as before.
  const ok = decide({ group: 'demo/worker', min: 1, max: 2, hosts: group({}) }, idle, cfg, 1e9);
  assert.deepEqual(ok.decisions.map((d) => [d.action, d.host]), [['scale-down', 'w2']]);
  // Above max (the group shrank in environments.ts): a failing host goes before a healthy one.
  const over = decide({ group: 'demo/worker', min: 1, max: 1, hosts: group({ healthy: false }) }, emptyGroupState(), cfg, 1e9);
  assert.deepEqual(over.decisions.map((d) => [d.action, d.host]), [['scale-down', 'w1']]);
});

test('a host replaced again and again without coming back healthy is backed off, doubling; coming back healthy clears it', () => {
  const at = (i: number) => i * INTERVAL;
  let state = emptyGroupState();
  const seen: [number, string, string][] = [];
  const step = (i: number, w1: HostObservation['state'], healthy?: boolean) => {
    const hosts: HostObservation[] = [
      { name: 'w1', index: 1, state: w1, load: w1 === 'live' ? 0.5 : undefined, healthy: w1 === 'live' ? healthy : undefined },
      { name: 'w2', index: 2, state: 'live', load: 0.5, healthy: true },
    ];
    const r = decide({ group: 'g', min: 2, max: 2, hosts }, state, cfg, at(i));
    state = r.state;
    for (const d of r.decisions) if (d.host) seen.push([i, d.action, d.reason]);
  };
  // w1's VM dies every time it is started: lost at every interval.
  for (let i = 0; i < 40; i++) step(i, 'lost');
  const replaces = seen.filter(([, a]) => a === 'replace').map(([i]) => i);
  // Two at once, then after 60 s (6 intervals), then after 120 s (12 more).
  assert.deepEqual(replaces, [0, 1, 7, 19]);
  const backoff = seen.find(([i, a]) => i === 2 && a === 'backoff')!;
  assert.match(backoff[2], /^its VM is not running; replaced 2 times in a row without coming back healthy: next try in 50 s$/);
  assert.match(seen.find(([i]) => i === 7)![2], /\(replacement 3 in a row\)$/);
  assert.deepEqual(state.replaced?.w1, { count: 4, last: at(19), next: at(19) + 240_000 });
  // It comes back healthy: the record goes, and a later death is replaced at once.
  step(40, 'live', true);
  assert.equal(state.replaced?.w1, undefined);
  step(41, 'lost');
  assert.deepEqual(seen.at(-1)!.slice(0, 2), [41, 'replace']);
  // Live but failing keeps the count: being replaced for failing checks backs off too.
  state = emptyGroupState();
  seen.length = 0;
  for (let i = 0; i < 30; i++) step(i, i % 4 === 0 ? 'booting' : 'live', false);
  assert.ok(seen.some(([, a]) => a === 'backoff'), JSON.stringify(seen));
  assert.ok(seen.filter(([, a]) => a === 'replace').length <= 4);
});
