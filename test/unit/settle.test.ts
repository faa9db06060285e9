import { test } from 'node:test';
import assert from 'node:assert/strict';
import { settleGroup, type SettleSteps } from '../../src/env/services.js';
import type { DeclaredHost } from '../../src/config/load.js';
import type { HostResult } from '../../src/deploy/run.js';

/**
 * The service-settling plan on hosts modelled in memory: what each host
 * shows (its deploy marker, its release, whether the service runs) against
 * what the inventory recorded, and which operations reach which host.
 */

interface Model {
  marker?: string;
  release: boolean;
  running: boolean;
  reachable: boolean;
}

function world(hosts: Record<string, Model>) {
  const calls: string[] = [];
  const said: string[] = [];
  const declared = (name: string): DeclaredHost => ({ kind: 'host', name, env: 'demo', role: 'worker', image: 'mini', service: 'hello', version: '1.0.0', index: 1 });
  const result = (host: string, op: string, outcome: HostResult['outcome'], detail?: string, changed?: boolean): HostResult => ({ host, operation: op, env: 'demo', role: 'worker', version: '1.0.0', outcome, ms: 1, detail, changed, output: [] });
  const steps: SettleSteps = {
    async run(op, hs) {
      return hs.map((h) => {
        calls.push(`${op} ${h.name}`);
        const m = hosts[h.name]!;
        if (!m.reachable) return result(h.name, op, 'unreachable', 'no SSH answer');
        switch (op) {
          case 'deploy':
            m.marker = '1.0.0';
            m.release = true;
            return result(h.name, op, 'ok');
          case 'start':
            if (!m.release) return result(h.name, op, 'failed', 'exit 127: /opt/hello/hello.sh: not found');
            m.running = true;
            return result(h.name, op, 'ok');
          case 'test':
            return m.running && m.marker === '1.0.0' ? result(h.name, op, 'ok') : result(h.name, op, 'failed', 'connection refused');
          default:
            return result(h.name, op, 'ok', undefined, false);
        }
      });
    },
    async deployedOn(hs) {
      return new Map(hs.filter((h) => hosts[h.name]!.reachable).map((h) => [h.name, hosts[h.name]!.marker]));
    },
    say: (host, what) => said.push(`${host}: ${what}`),
  };
  return { calls, said, steps, declared };
}

test('settle: a passing host is left alone; one the inventory thinks deployed but that shows nothing gets a deploy; a start that fails for lack of a release leads to a deploy', async () => {
  const w = world({
    // Recorded and serving: only tested.
    ok: { marker: '1.0.0', release: true, running: true, reachable: true },
    // Recorded at 1.0.0, recreated from its image: no marker, no release (the run the issue reported).
    recreated: { release: false, running: false, reachable: true },
    // Marker there, release gone (a crash took part of the disk): start fails, then deploy and start.
    halfgone: { marker: '1.0.0', release: false, running: false, reachable: true },
    // Never deployed.
    fresh: { release: false, running: false, reachable: true },
    // Gone from the network: every step says so, nothing else happens.
    away: { marker: '1.0.0', release: true, running: true, reachable: false },
  });
  const hosts = ['ok', 'recreated', 'halfgone', 'fresh', 'away'].map(w.declared);
  const recorded = new Map([['ok', '1.0.0'], ['recreated', '1.0.0'], ['halfgone', '1.0.0'], ['fresh', undefined], ['away', '1.0.0']]);
  const out = await settleGroup(w.steps, { service: 'hello', version: '1.0.0', follows: false, hosts, recorded });
  assert.deepEqual(Object.fromEntries([...out].map(([h, r]) => [h, [r.operation, r.outcome, r.detail]])), {
    ok: ['test', 'ok', 'unchanged'],
    recreated: ['test', 'ok', undefined],
    halfgone: ['test', 'ok', undefined],
    fresh: ['test', 'ok', undefined],
    away: ['deploy', 'unreachable', 'no SSH answer'],
  });
  assert.deepEqual(w.calls, [
    // Who passes already (only hosts recorded at the version are asked).
    'test ok', 'test recreated', 'test halfgone', 'test away',
    // Deployed where the host shows another version or none, whatever was recorded.
    'deploy recreated', 'deploy fresh', 'deploy away',
    'start recreated', 'start halfgone', 'start fresh',
    // halfgone's start failed though its marker said 1.0.0: its release is gone.
    'deploy halfgone', 'start halfgone',
    'test recreated', 'test halfgone', 'test fresh',
  ]);
  assert.ok(w.said.includes('recreated: hello 1.0.0: recorded as deployed, but the host shows nothing'));
  assert.ok(w.said.includes('halfgone: hello start failed: deploying 1.0.0 again'));
  assert.ok(w.said.includes('ok: hello 1.0.0: passing its test already'));
  assert.ok(!w.calls.includes('deploy ok') && !w.calls.includes('start ok'), 'the passing host was touched');
  assert.equal(w.calls.filter((c) => c === 'deploy recreated').length, 1);
});

test('settle: a balancer is told the live set before its test; an unchanged config counts as unchanged', async () => {
  const w = world({ lb: { marker: '1.0.0', release: true, running: true, reachable: true } });
  const out = await settleGroup(w.steps, { service: 'lb', version: '1.0.0', follows: true, hosts: [w.declared('lb')], recorded: new Map([['lb', '1.0.0']]) });
  assert.deepEqual(w.calls, ['reconfigure lb', 'test lb']);
  assert.equal(out.get('lb')!.detail, 'unchanged');
});
