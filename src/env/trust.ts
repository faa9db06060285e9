import type { Lab } from '../config/load.js';
import type { Inventory } from '../inventory/store.js';
import type { HostRecord } from '../inventory/types.js';
import { Session } from '../deploy/session.js';
import { clusterHosts } from '../deploy/targets.js';
import { sshTarget } from '../hosts/sshconfig.js';
import { allKeys } from '../inventory/values.js';
import { ensureEnvKey, ensureSecrets } from '../project/secrets.js';
import { LabError, UsageError, messageOf } from '../errors.js';
import { environment } from './plan.js';
import { mapBounded } from '../util/pool.js';
import { shellWord as q } from '../util/shell.js';

/**
 * Hosts that trust each other (environments.ts `trust: true`): the seed
 * project's shared root keys, kept per environment. Every live host of the
 * environment gets the environment's private key (root's id_ed25519, and
 * id_dropbear where the host has dropbear's client), authorizes its public
 * half beside the lab's key, and has every peer pinned in root's known_hosts
 * (by name and by address, each of the keys its callback brought) and named
 * in /etc/hosts. A host of another environment holds another key: it is
 * refused, and it is not in known_hosts either.
 */

/** What marks lab's lines in a host's authorized_keys and /etc/hosts, so a new grant replaces them and leaves the rest. */
const MARK = 'lab-env:';

/** root's known_hosts for a host of the environment: each peer by name and by address (dropbear's client matches either as typed). */
export function envKnownHosts(peers: HostRecord[]): string {
  const lines = peers.flatMap((h) => allKeys(h).flatMap((k) => [h.name, h.ip!].map((n) => `${n} ${k}`)));
  return `# Written by lab: the hosts of this environment, their keys as their callbacks brought them.\n${lines.join('\n')}\n`;
}


/** The shell that installs the files written beside it: the key, authorized_keys and /etc/hosts entries replaced, nothing else touched. */
function installCommand(publicKey: string, hostsLines: string): string {
  return [
    'set -e',
    'umask 077',
    'mkdir -p /root/.ssh /etc/lab',
    'mv -f /root/.ssh/id_ed25519.lab-new /root/.ssh/id_ed25519',
    `printf '%s\\n' ${q(publicKey)} > /root/.ssh/id_ed25519.pub`,
    'mv -f /root/.ssh/known_hosts.lab-new /root/.ssh/known_hosts',
    // dropbear's client reads keys in its own format only.
    'if command -v dropbearconvert >/dev/null 2>&1; then dropbearconvert openssh dropbear /root/.ssh/id_ed25519 /root/.ssh/id_dropbear.new >/dev/null 2>&1 && mv -f /root/.ssh/id_dropbear.new /root/.ssh/id_dropbear; fi',
    `{ grep -v ' ${MARK}' /root/.ssh/authorized_keys 2>/dev/null || true; printf '%s\\n' ${q(publicKey)}; } > /root/.ssh/authorized_keys.new`,
    'chmod 600 /root/.ssh/authorized_keys.new && mv -f /root/.ssh/authorized_keys.new /root/.ssh/authorized_keys',
    // Kept under /etc/lab too: the mini guest's /etc lives in memory, and its init adds these at boot.
    `printf '%s' ${q(hostsLines)} > /etc/lab/hosts`,
    `{ grep -v '# ${MARK}' /etc/hosts 2>/dev/null || true; cat /etc/lab/hosts; } > /etc/hosts.lab-new && cat /etc/hosts.lab-new > /etc/hosts && rm -f /etc/hosts.lab-new`,
  ].join('\n');
}

export interface TrustResult {
  host: string;
  ok: boolean;
  detail?: string;
}

/** Give every live host of a trusting environment its key, its peers pinned; each host's result (one that cannot be reached fails alone). */
export async function grantTrust(lab: Lab, inventory: Inventory, env: string, o: { parallel: number; connectTimeoutMs: number; commandTimeoutMs: number }): Promise<TrustResult[]> {
  const records = (await inventory.read()).hosts;
  const peers = clusterHosts(lab, records)
    .filter((h) => h.env === env)
    .map((h) => records[h.name]!)
    .filter((r) => r.hostKey && sshTarget(r));
  if (peers.length === 0) return [];
  const key = ensureEnvKey(lab.paths, lab.config.name, env);
  const { privateKey } = ensureSecrets(lab.paths, lab.config.name);
  const knownHosts = envKnownHosts(peers);
  const hostsLines = peers.map((h) => `${h.ip} ${h.name} # ${MARK}${env}\n`).join('');
  return mapBounded(peers, o.parallel, async (h): Promise<TrustResult> => {
    const reach = sshTarget(h)!;
    let s: Session | undefined;
    try {
      s = await Session.open({ host: h.name, address: reach.address, port: reach.port, hostKey: h.hostKey!, privateKey, connectTimeoutMs: o.connectTimeoutMs });
      await s.exec('mkdir -p /root/.ssh && chmod 700 /root/.ssh', o.commandTimeoutMs);
      await s.write('/root/.ssh/id_ed25519.lab-new', Buffer.from(key.privateKey), 0o600, o.commandTimeoutMs);
      await s.write('/root/.ssh/known_hosts.lab-new', Buffer.from(knownHosts), 0o644, o.commandTimeoutMs);
      const r = await s.exec(installCommand(key.publicKey, hostsLines), o.commandTimeoutMs);
      if (r.code !== 0) return { host: h.name, ok: false, detail: `installing the environment's key failed (exit ${r.code}): ${(r.stderr || r.stdout).trim().split('\n').at(-1) ?? ''}` };
      return { host: h.name, ok: true };
    } catch (e) {
      return { host: h.name, ok: false, detail: messageOf(e) };
    } finally {
      s?.close();
    }
  });
}

/** `lab env trust <env>`: the grant, for an environment that asks for it and has live hosts. */
export async function trustEnvironment(lab: Lab, inventory: Inventory, env: string, o: { parallel: number; connectTimeoutMs: number; commandTimeoutMs: number }): Promise<TrustResult[]> {
  if (!environment(lab, env).trust) throw new UsageError(`environment ${env} does not trust itself: set trust: true on it in environments.ts`);
  const results = await grantTrust(lab, inventory, env, o);
  if (results.length === 0) throw new LabError(`no live host of environment ${env} with a recorded host key`, { hint: `start it first: lab env start-all ${env}` });
  return results;
}
