/** IPv4 arithmetic for the lab network: enough for CIDR membership and leases. */

export function ipToInt(ip: string): number {
  const parts = ip.split('.').map(Number);
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export interface Cidr {
  network: number;
  prefix: number;
  /** First and last usable host addresses. */
  first: number;
  last: number;
  netmask: string;
}

export function parseCidr(cidr: string): Cidr {
  const [ip, bits] = cidr.split('/');
  const prefix = Number(bits);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  const network = (ipToInt(ip!) & mask) >>> 0;
  const broadcast = (network | (~mask >>> 0)) >>> 0;
  return { network, prefix, first: network + 1, last: broadcast - 1, netmask: intToIp(mask) };
}

export function inCidr(ip: string, cidr: Cidr): boolean {
  const n = ipToInt(ip);
  return n >= cidr.first && n <= cidr.last;
}
