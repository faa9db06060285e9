import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { repo } from './helpers.js';

/**
 * Real libvirt hypervisor hosts for tests, on this machine: each a network
 * namespace and a private mount namespace with its own libvirtd and sshd
 * (test/fixtures/libvirt/hypervisor.sh), its bridge joined to the lab
 * namespace's bridge, reached as qemu+ssh://root@10.77.0.1N/system.
 */
export interface TestHypervisor {
  name: string;
  uri: string;
  /** Kill its daemons and its guests, and cut its link: a machine that went away. */
  kill: () => Promise<void>;
  /** Start its daemons again (its guests do not come back by themselves). */
  up: () => Promise<void>;
  /** virsh on it directly (the test's own view, not lab's). */
  virsh: (args: string[]) => Promise<string>;
  /** Its network namespace. */
  ns?: string;
  /** The command prefix that runs a program inside it (its network, mounts and host name), as on the hypervisor itself. */
  enter?: () => string[];
}

const script = path.join(repo, 'test', 'fixtures', 'libvirt', 'hypervisor.sh');

export async function makeHypervisors(labNs: string, bridge: string, count: number, opts: { keepRoot?: boolean } = {}): Promise<{ hvs: TestHypervisor[]; key: string; cleanup: () => Promise<void> }> {
  const root = mkdtempSync(path.join(tmpdir(), 'lab-hv-'));
  const key = path.join(root, 'key');
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
  // The test's own look at a hypervisor leaves no host key in the user's known_hosts (each run's hypervisors have new ones).
  const ssh = path.join(root, 'ssh');
  writeFileSync(ssh, '#!/bin/sh\nexec ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR "$@"\n', { mode: 0o700 });
  const id = `${process.pid % 10000}`;
  const hvs: TestHypervisor[] = [];
  const states: [string, number][] = [];
  const cleanup = async () => {
    for (const [state, n] of states) await execa('bash', [script, 'gone', state, String(n)], { reject: false });
    rmSync(root, { recursive: true, force: true });
  };
  try {
    for (let n = 1; n <= count; n++) {
      const state = path.join(root, `lhv${id}n${n}`);
      states.push([state, n]);
      const env = opts.keepRoot ? { HV_ROOT: 'keep' } : {};
      const up = async () => void (await execa('bash', [script, 'up', state, String(n), labNs, bridge, `${key}.pub`], { timeout: 60_000, env }));
      await up();
      const uri = `qemu+ssh://root@10.77.0.1${n}/system?keyfile=${key}`;
      hvs.push({
        name: `hv${n}`,
        ns: path.basename(state),
        // libvirtd's namespaces (the first pid the fixture records).
        enter: () => ['nsenter', '-t', readFileSync(path.join(state, 'pids'), 'utf8').split('\n')[0]!.trim(), '-m', '-n', '-u', '--'],
        uri,
        kill: async () => void (await execa('bash', [script, 'down', state, String(n)], { timeout: 60_000 })),
        up,
        virsh: async (args) => String((await execa('ip', ['netns', 'exec', labNs, 'virsh', '-c', `${uri}&command=${ssh}`, ...args], { timeout: 60_000 })).stdout),
      });
    }
  } catch (e) {
    await cleanup();
    throw e;
  }
  return { hvs, key, cleanup };
}

/** The scaffold's environments.ts with provider libvirt on these hypervisors. */
export function onHypervisors(hvs: TestHypervisor[], memory = 2048, cpus = 4): (source: string) => string {
  return (source) =>
    source.replace(
      "provider: 'qemu',",
      `provider: 'libvirt',\n  hypervisors: {\n${hvs.map((h) => `    ${h.name}: { uri: '${h.uri}', bridge: 'br0', cpus: ${cpus}, memory: ${memory}, accel: 'tcg' },`).join('\n')}\n  },`,
    );
}

/**
 * Whether a TCP connection from one hypervisor reaches a listener on
 * another (the path a live migration's memory and disk take), with what the
 * segment looks like when it does not: the fixture's own precondition, so a
 * broken test network is not blamed on lab.
 */
export async function tcpPath(from: TestHypervisor, to: TestHypervisor, toAddress: string): Promise<string | undefined> {
  const port = 49100;
  const listener = execa('ip', ['netns', 'exec', to.ns!, process.execPath, '-e', `require('net').createServer((c) => c.end('ok')).listen(${port}, () => console.log('up'));setTimeout(() => process.exit(0), 8000)`], { reject: false });
  await new Promise<void>((resolve) => listener.stdout?.once('data', () => resolve()));
  const connect = await execa('ip', ['netns', 'exec', from.ns!, process.execPath, '-e', `const c = require('net').connect(${port}, '${toAddress}'); c.setTimeout(5000, () => { console.log('timed out'); process.exit(1); }); c.on('data', (d) => { console.log(String(d)); process.exit(0); }); c.on('error', (e) => { console.log(e.message); process.exit(1); })`], { reject: false, timeout: 10_000 });
  listener.kill();
  await listener;
  if (connect.exitCode === 0) return undefined;
  const look = async (args: string[]) => String((await execa('ip', args, { reject: false })).stdout);
  return [`${from.name} -> ${toAddress}:${port}: ${connect.stdout}`, `${from.name} neigh: ${await look(['-n', from.ns!, 'neigh'])}`, `${to.name} neigh: ${await look(['-n', to.ns!, 'neigh'])}`, `${to.name} links: ${await look(['-n', to.ns!, '-br', 'link'])}`].join('\n');
}
