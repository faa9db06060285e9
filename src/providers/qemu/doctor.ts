import { existsSync } from 'node:fs';
import { execa } from 'execa';
import type { Lab } from '../../config/load.js';
import type { Check } from '../../doctor/types.js';
import { firstLine, which } from '../../util/exec.js';
import { accelerator } from './accel.js';

/** What QEMU needs here: its tools, KVM (or not), and on a bridged lab taps and the gateway on an interface. */
export async function qemuDoctor(lab: Lab, probe: { kernel?: string }): Promise<Check[]> {
  const checks = await qemuChecks(probe.kernel);
  if (lab.config.network.mode === 'bridge') checks.push(await tapCheck(), await gatewayCheck(lab));
  return checks;
}

async function qemuChecks(kernel: string | undefined): Promise<Check[]> {
  const checks: Check[] = [];
  const apt = 'apt-get install qemu-system-x86 qemu-utils';
  for (const [cmd, name] of [['qemu-system-x86_64', 'qemu-system'], ['qemu-img', 'qemu-img']] as const) {
    const where = await which(cmd);
    if (!where) checks.push({ name, status: 'fail', detail: `${cmd} not found`, fix: apt });
    else checks.push({ name, status: 'ok', detail: `${where}: ${firstLine((await execa(cmd, ['--version'], { reject: false })).stdout)}` });
  }
  if (checks.every((c) => c.status === 'ok')) {
    // A kernel to try under KVM, when one was built: QEMU's own word is not enough.
    const accel = await accelerator(kernel);
    checks.push(
      accel === 'kvm'
        ? { name: 'kvm', status: 'ok', detail: 'KVM works: guests run at native speed' }
        : {
            name: 'kvm',
            status: 'warn',
            detail: existsSync('/dev/kvm') ? '/dev/kvm exists but QEMU cannot use it: guests run under TCG (slower, still works)' : 'no /dev/kvm: guests run under TCG (slower, still works)',
            fix: 'enable virtualization in the firmware, load kvm_intel or kvm_amd, and give this user access to /dev/kvm',
          },
    );
  }
  return checks;
}

async function tapCheck(): Promise<Check> {
  const dev = `labdoc${process.pid % 100000}`;
  const r = await execa('ip', ['tuntap', 'add', 'dev', dev, 'mode', 'tap'], { reject: false });
  if (r.exitCode !== 0) {
    return { name: 'taps', status: 'fail', detail: `cannot make a tap device: ${firstLine(String(r.stderr))}`, fix: "run lab as root (or with CAP_NET_ADMIN), or use network.mode 'user'" };
  }
  await execa('ip', ['link', 'del', dev], { reject: false });
  return { name: 'taps', status: 'ok', detail: 'a tap device can be made (and was removed)' };
}

async function gatewayCheck(lab: Lab): Promise<Check> {
  const { gateway, name } = lab.config.network;
  const r = await execa('ip', ['-o', '-4', 'addr', 'show'], { reject: false });
  const line = String(r.stdout).split('\n').find((l) => l.includes(` ${gateway}/`));
  return line
    ? { name: 'bridge', status: 'ok', detail: `${gateway} is on ${line.split(/\s+/)[1]}` }
    : {
        name: 'bridge',
        status: 'fail',
        detail: `no interface holds the gateway ${gateway}: guests cannot reach lab serve`,
        fix: `ip link add ${name} type bridge && ip addr add ${gateway}/${lab.config.network.cidr.split('/')[1]} dev ${name} && ip link set ${name} up`,
      };
}

