import net from 'node:net';
import type { HostRecord } from '../inventory/types.js';

export interface ProbeResult {
  name: string;
  target: string;
  method: 'icmp' | 'ssh-banner';
  alive: boolean;
  /** Milliseconds to the answer, when there was one. */
  ms?: number;
}

/**
 * A host reachable only through a forwarded port (QEMU user networking,
 * VirtualBox NAT) cannot be pinged; it counts as alive when its SSH server
 * sends its banner through the forward. A bare TCP connect would not do: the
 * hypervisor accepts on the forwarded port even when the guest is gone.
 */
export function sshBanner(address: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: address, port });
    let seen = '';
    const done = (ok: boolean) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.on('data', (d) => {
      seen += d.toString('latin1');
      if (seen.length >= 4) done(seen.startsWith('SSH-'));
    });
    sock.on('error', () => done(false));
    sock.on('close', () => done(false));
  });
}

export async function icmp(address: string, timeoutMs: number): Promise<number | undefined> {
  // ping's -W takes whole seconds; the sweep's own deadline bounds the rest.
  const seconds = Math.max(1, Math.ceil(timeoutMs / 1000));
  const ping = (await import('ping')).default;
  const r = await ping.promise.probe(address, { timeout: seconds, deadline: seconds, min_reply: 1, extra: ['-n'] });
  if (!r.alive) return undefined;
  const t = Number(r.time);
  return Number.isFinite(t) ? t : 0;
}

async function probeOne(h: HostRecord, timeoutMs: number): Promise<ProbeResult> {
  const start = performance.now();
  if (h.reach) {
    const alive = await sshBanner(h.reach.address, h.reach.port, timeoutMs);
    return { name: h.name, target: `${h.reach.address}:${h.reach.port}`, method: 'ssh-banner', alive, ms: alive ? performance.now() - start : undefined };
  }
  const ms = await icmp(h.ip!, timeoutMs).catch(() => undefined);
  return { name: h.name, target: h.ip!, method: 'icmp', alive: ms !== undefined, ms };
}

export interface SweepOptions {
  /** How long one host may take to answer. */
  timeoutMs: number;
  /** One deadline for the whole sweep: whatever has not answered by then is down. */
  deadlineMs: number;
  /** Probes in flight at once. */
  concurrency: number;
}

/** Probe every host concurrently, bounded, under one deadline. */
export async function sweep(hosts: HostRecord[], opts: SweepOptions): Promise<ProbeResult[]> {
  const results = new Map<string, ProbeResult>();
  const queue = [...hosts];
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, opts.deadlineMs);
  });
  const worker = async () => {
    for (let h = queue.shift(); h; h = queue.shift()) {
      const r = await probeOne(h, opts.timeoutMs);
      results.set(r.name, r);
    }
  };
  const workers = Array.from({ length: Math.min(opts.concurrency, hosts.length) }, worker);
  await Promise.race([Promise.all(workers), deadline]);
  clearTimeout(timer);
  queue.length = 0; // past the deadline nothing new starts
  return hosts.map(
    (h) =>
      results.get(h.name) ?? {
        name: h.name,
        target: h.reach ? `${h.reach.address}:${h.reach.port}` : h.ip!,
        method: h.reach ? 'ssh-banner' : 'icmp',
        alive: false,
      },
  );
}
