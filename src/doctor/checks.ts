import { accessSync, constants } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Lab } from '../config/load.js';
import { providerKind } from '../providers/index.js';
import { anyMiniKernel } from '../distros/mini/guest.js';
import type { Check } from './types.js';
import { firstLine, loadExeca, which } from '../util/exec.js';
import { findServer } from '../server/serve.js';
import { defaultBindAddress } from '../kickstart/url.js';

export type { Check } from './types.js';

/**
 * `lab doctor`: what the chosen provider and the lab need from this machine,
 * each checked for real (a tap made and removed, a port bound, a ping sent to
 * loopback), each failure with the fix.
 */


async function pingCheck(): Promise<Check> {
  if (!(await which('ping'))) return { name: 'ping', status: 'fail', detail: 'ping not found: lab hosts filter cannot probe hosts', fix: 'apt-get install iputils-ping' };
  const execa = await loadExeca();
  const r = await execa('ping', ['-c', '1', '-W', '1', '127.0.0.1'], { reject: false });
  return r.exitCode === 0
    ? { name: 'ping', status: 'ok', detail: 'ICMP echo to 127.0.0.1 answered' }
    : { name: 'ping', status: 'fail', detail: `ping cannot send ICMP: ${firstLine(String(r.stderr))}`, fix: 'run as root, or allow ICMP sockets: sysctl net.ipv4.ping_group_range="0 2147483647"' };
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
  // A provider that makes the network holding the gateway (VirtualBox's host-only interface) does it when lab serve starts.
  if (error.code === 'EADDRNOTAVAIL' && providerKind(lab).prepareNetwork) {
    return { name: 'server port', status: 'warn', detail: `${host} is on no interface yet: lab serve makes the ${lab.config.provider} network holding it, then listens on ${host}:${port}` };
  }
  return {
    name: 'server port',
    status: 'fail',
    detail: `cannot listen on ${host}:${port}: ${error.code === 'EADDRINUSE' ? 'in use' : error.code === 'EADDRNOTAVAIL' ? 'no such address here' : error.code}`,
    fix: error.code === 'EADDRINUSE' ? `stop what uses port ${port} (ss -ltnp 'sport = :${port}'), or change network.serverPort` : 'put the lab gateway on an interface first (see the network checks above)',
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
  // The provider's own checks (its tools, what its network needs), then what every lab needs.
  const provider = await providerKind(lab).doctor(lab, { kernel: anyMiniKernel() });
  return [...provider, await pingCheck(), await portCheck(lab), ...isoChecks(lab)];
}
