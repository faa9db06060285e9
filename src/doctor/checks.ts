import { accessSync, constants, existsSync } from 'node:fs';
import { anyMiniKernel } from '../images/mini.js';
import net from 'node:net';
import path from 'node:path';
import { execa } from 'execa';
import type { Lab } from '../config/load.js';
import { accelerator } from '../providers/qemu/accel.js';
import { VBoxDriver } from '../providers/virtualbox/driver.js';
import { findServer } from '../server/serve.js';
import { defaultBindAddress } from '../server/url.js';
import { messageOf } from '../errors.js';

/**
 * `lab doctor`: what the chosen provider and the lab need from this machine,
 * each checked for real (a tap made and removed, a port bound, a ping sent to
 * loopback), each failure with the fix.
 */

export interface Check {
  name: string;
  /** ok; warn: works, but not as well as it could; fail: lab cannot do this. */
  status: 'ok' | 'warn' | 'fail';
  detail: string;
  fix?: string;
}

const which = async (cmd: string) => (await execa('sh', ['-c', `command -v ${cmd}`], { reject: false })).stdout.trim() || undefined;
const firstLine = (s: string) => s.trim().split('\n')[0] ?? '';

async function qemuChecks(): Promise<Check[]> {
  const checks: Check[] = [];
  const apt = 'apt-get install qemu-system-x86 qemu-utils';
  for (const [cmd, name] of [['qemu-system-x86_64', 'qemu-system'], ['qemu-img', 'qemu-img']] as const) {
    const where = await which(cmd);
    if (!where) checks.push({ name, status: 'fail', detail: `${cmd} not found`, fix: apt });
    else checks.push({ name, status: 'ok', detail: `${where}: ${firstLine((await execa(cmd, ['--version'], { reject: false })).stdout)}` });
  }
  if (checks.every((c) => c.status === 'ok')) {
    // A kernel to try under KVM: the mini guest's, when one was built (QEMU's own word is not enough).
    const accel = await accelerator(anyMiniKernel());
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

async function virtualboxChecks(): Promise<Check[]> {
  const bin = process.env.LAB_VBOXMANAGE ?? 'VBoxManage';
  try {
    const v = await new VBoxDriver().getVersion();
    const supported = v.major === 7 || (v.major === 6 && v.minor === 1);
    return [
      supported
        ? { name: 'VBoxManage', status: 'ok', detail: `${bin}: VirtualBox ${v.major}.${v.minor}.${v.patch}` }
        : { name: 'VBoxManage', status: 'warn', detail: `VirtualBox ${v.major}.${v.minor}.${v.patch}: lab knows 6.1 and 7.x`, fix: 'install VirtualBox 7' },
    ];
  } catch (e) {
    return [{ name: 'VBoxManage', status: 'fail', detail: `${bin}: ${firstLine(messageOf(e))}`, fix: 'install VirtualBox (virtualbox.org), or set LAB_VBOXMANAGE to its VBoxManage' }];
  }
}

async function pingCheck(): Promise<Check> {
  if (!(await which('ping'))) return { name: 'ping', status: 'fail', detail: 'ping not found: lab hosts filter cannot probe hosts', fix: 'apt-get install iputils-ping' };
  const r = await execa('ping', ['-c', '1', '-W', '1', '127.0.0.1'], { reject: false });
  return r.exitCode === 0
    ? { name: 'ping', status: 'ok', detail: 'ICMP echo to 127.0.0.1 answered' }
    : { name: 'ping', status: 'fail', detail: `ping cannot send ICMP: ${firstLine(String(r.stderr))}`, fix: 'run as root, or allow ICMP sockets: sysctl net.ipv4.ping_group_range="0 2147483647"' };
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

async function portCheck(lab: Lab): Promise<Check> {
  const running = await findServer(lab);
  const port = lab.config.network.serverPort;
  if (running) return { name: 'server port', status: 'ok', detail: `lab serve runs at ${running.url}` };
  const host = defaultBindAddress(lab);
  const error = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
    const s = net.createServer();
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e));
    s.listen(port, host, () => s.close(() => resolve(undefined)));
  });
  if (!error) return { name: 'server port', status: 'ok', detail: `${host}:${port} is free` };
  return {
    name: 'server port',
    status: 'fail',
    detail: `cannot listen on ${host}:${port}: ${error.code === 'EADDRINUSE' ? 'in use' : error.code === 'EADDRNOTAVAIL' ? 'no such address here' : error.code}`,
    fix: error.code === 'EADDRINUSE' ? `stop what uses port ${port} (ss -ltnp 'sport = :${port}'), or change network.serverPort` : 'make the lab network first (see the bridge check)',
  };
}

function isoChecks(lab: Lab): Check[] {
  return Object.entries(lab.config.images)
    .filter(([, img]) => img.iso !== undefined)
    .map(([name, img]): Check => {
      const file = path.resolve(lab.paths.dir, img.iso!);
      try {
        accessSync(file, constants.R_OK);
        return { name: `iso ${name}`, status: 'ok', detail: `${img.iso} is readable` };
      } catch {
        // Only what builds from it needs it: a warning, naming who.
        const envs = Object.entries(lab.config.environments)
          .filter(([, e]) => e.groups.some((g) => g.image === name))
          .map(([env]) => env);
        return {
          name: `iso ${name}`,
          status: 'warn',
          detail: `${img.iso} is missing or unreadable: image ${name}${envs.length ? ` (environment ${envs.join(', ')})` : ''} cannot be built`,
          fix: `put the installer ISO at ${file}`,
        };
      }
    });
}

export async function runChecks(lab: Lab): Promise<Check[]> {
  const provider = lab.config.provider === 'qemu' ? await qemuChecks() : await virtualboxChecks();
  const network = lab.config.network.mode === 'bridge' && lab.config.provider === 'qemu' ? [await tapCheck(), await gatewayCheck(lab)] : [];
  return [...provider, await pingCheck(), ...network, await portCheck(lab), ...isoChecks(lab)];
}
