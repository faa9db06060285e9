import { existsSync } from 'node:fs';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { cli } from './helpers.js';

/**
 * Two network namespaces joined by a veth pair, made and removed by the test:
 * the prober (where lab runs) and the targets, whose veth carries the live
 * addresses. Nothing is sent outside them.
 */
export interface TestNet {
  prober: string;
  targets: string;
  /** Addresses that answer ICMP (on the targets' side). */
  live: string[];
  /** Addresses in the same /24 that nothing holds. */
  dead: string[];
  cleanup: () => Promise<void>;
}

const sh = (cmd: string, args: string[]) => execa(cmd, args, { timeout: 30_000 });

export async function makeTestNet(opts: { subnet: string; live: number[]; dead: number[] }): Promise<TestNet> {
  const id = `${process.pid % 100000}${Math.floor(Math.random() * 100)}`;
  const prober = `labt${id}p`;
  const targets = `labt${id}t`;
  const [vp, vt] = [`lv${id}p`, `lv${id}t`];
  const cleanup = async () => {
    for (const ns of [prober, targets]) await execa('ip', ['netns', 'del', ns], { reject: false });
  };
  try {
    await sh('ip', ['netns', 'add', prober]);
    await sh('ip', ['netns', 'add', targets]);
    await sh('ip', ['-n', prober, 'link', 'add', vp, 'type', 'veth', 'peer', 'name', vt, 'netns', targets]);
    await sh('ip', ['-n', prober, 'addr', 'add', `${opts.subnet}.1/24`, 'dev', vp]);
    for (const n of opts.live) await sh('ip', ['-n', targets, 'addr', 'add', `${opts.subnet}.${n}/24`, 'dev', vt]);
    for (const [ns, dev] of [[prober, vp], [targets, vt]] as const) {
      await sh('ip', ['-n', ns, 'link', 'set', dev, 'up']);
      await sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    }
  } catch (e) {
    await cleanup();
    throw e;
  }
  return {
    prober,
    targets,
    live: opts.live.map((n) => `${opts.subnet}.${n}`),
    dead: opts.dead.map((n) => `${opts.subnet}.${n}`),
    cleanup,
  };
}

/**
 * A namespace holding the scaffold's lab network: bridge labnet with the
 * gateway 10.77.0.1/24, as `scripts/demo.sh` makes it. Remove with `ip netns del`.
 */
export async function makeLabBridge(ns: string): Promise<void> {
  for (const args of [
    ['netns', 'add', ns],
    ['-n', ns, 'link', 'set', 'lo', 'up'],
    ['-n', ns, 'link', 'add', 'labnet', 'type', 'bridge'],
    ['-n', ns, 'addr', 'add', '10.77.0.1/24', 'dev', 'labnet'],
    ['-n', ns, 'link', 'set', 'labnet', 'up'],
  ]) {
    await sh('ip', args);
  }
}

/** `lab serve` for the lab folder inside the namespace, once it answers (its server.json is written). */
export async function serveInNs(ns: string, dir: string): Promise<{ stop: () => Promise<void> }> {
  const server: ResultPromise = execa('ip', ['netns', 'exec', ns, process.execPath, cli, '--lab', dir, 'serve'], { reject: false });
  const stop = async () => {
    server.kill('SIGTERM');
    await server;
  };
  const state = path.join(dir, 'inventory', 'server.json');
  const end = Date.now() + 20_000;
  while (!existsSync(state)) {
    if (Date.now() > end) {
      await stop();
      throw new Error('lab serve did not start within 20 s');
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  // Not the ResultPromise itself: returned from an async function, it would be awaited (until the server exits).
  return { stop };
}
