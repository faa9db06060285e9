import type { Lab, DeclaredHost } from '../config/load.js';
import { parseCidr } from '../util/ipv4.js';
import type { Lease } from '../inventory/types.js';
import type { BootSpec } from '../distros/types.js';
import { imageDistro } from '../distros/index.js';
import { hostToken } from '../project/secrets.js';

/** Everything a kickstart or PXE template can use. Documented in the README's "Kickstart templates". */
export interface HostContext {
  host: {
    name: string;
    env: string;
    role: string;
    index: number;
    mac: string;
    /** Set on a bridged lab; absent with user networking, where the guest takes DHCP. */
    ip?: string;
    service?: string;
    version?: string;
  };
  image: { name: string; distro: string; cpus: number; memory: number; disk: number; iso?: string };
  network: { name: string; mode: string; cidr: string; gateway: string; netmask: string; prefix: number };
  lab: { name: string };
  server: { url: string };
  kickstart: { url: string };
  /** The callback URL with host name and token; the kickstart adds mac, ip and the host key. */
  callback: { url: string };
  ssh: { publicKey: string };
  boot: BootSpec;
}

export interface Serving {
  /** The server's base URL as guests reach it. */
  serverUrl: string;
  /** The lab's callback secret: each host's token derives from it (hostToken). */
  secret: string;
  publicKey: string;
}

export function hostContext(lab: Lab, host: DeclaredHost, lease: Lease, serving: Serving): HostContext {
  const image = lab.config.images[host.image]!;
  const cidr = parseCidr(lab.config.network.cidr);
  const ksUrl = `${serving.serverUrl}/ks/${host.name}`;
  const callback = new URL(`${serving.serverUrl}/booted`);
  callback.searchParams.set('host', host.name);
  // The host's own token: it lets this host, and only it, call back.
  callback.searchParams.set('token', hostToken(serving.secret, host.name));
  return {
    host: {
      name: host.name,
      env: host.env,
      role: host.role,
      index: host.index,
      mac: lease.mac,
      ip: lease.ip,
      service: host.service,
      version: host.version,
    },
    image: { name: host.image, distro: image.distro, cpus: image.cpus, memory: image.memory, disk: image.disk, iso: image.iso },
    network: {
      name: lab.config.network.name,
      mode: lab.config.network.mode,
      cidr: lab.config.network.cidr,
      gateway: lab.config.network.gateway,
      netmask: cidr.netmask,
      prefix: cidr.prefix,
    },
    lab: { name: lab.config.name },
    server: { url: serving.serverUrl },
    kickstart: { url: ksUrl },
    callback: { url: callback.toString() },
    ssh: { publicKey: serving.publicKey },
    boot: imageDistro(lab, host.image).bootSpec(host.image, ksUrl),
  };
}
