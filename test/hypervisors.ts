import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
}

const script = path.join(repo, 'test', 'fixtures', 'libvirt', 'hypervisor.sh');

export async function makeHypervisors(labNs: string, bridge: string, count: number): Promise<{ hvs: TestHypervisor[]; key: string; cleanup: () => Promise<void> }> {
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
      const up = async () => void (await execa('bash', [script, 'up', state, String(n), labNs, bridge, `${key}.pub`], { timeout: 60_000 }));
      await up();
      const uri = `qemu+ssh://root@10.77.0.1${n}/system?keyfile=${key}`;
      hvs.push({
        name: `hv${n}`,
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
