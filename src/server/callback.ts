import net from 'node:net';
import type { Callback } from '../inventory/boots.js';

/**
 * Parsing of boot callbacks and names at the HTTP edge: what comes in is
 * untrusted text; what goes on is a typed Callback or a reason it was refused.
 */

const LABEL = '[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?';
const HOST_NAME = new RegExp(`^${LABEL}(\\.${LABEL})*$`);
const KEY_TYPES = new Set([
  'ssh-ed25519',
  'ssh-rsa',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'sk-ssh-ed25519@openssh.com',
  'sk-ecdsa-sha2-nistp256@openssh.com',
]);

/** A host name as DNS allows it (lower case); anything else, path tricks included, is refused. */
export function parseHostName(raw: unknown): string | undefined {
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > 253) return undefined;
  const name = raw.toLowerCase();
  return HOST_NAME.test(name) ? name : undefined;
}

const MAC = /^[0-9a-f]{2}([:-])[0-9a-f]{2}(\1[0-9a-f]{2}){4}$|^[0-9a-f]{12}$/;

/** aa:bb:cc:dd:ee:ff, AA-BB-..., or aabbccddeeff -> aa:bb:cc:dd:ee:ff. */
export function parseMac(raw: unknown): string | undefined {
  if (typeof raw !== 'string') return undefined;
  const s = raw.trim().toLowerCase();
  if (!MAC.test(s)) return undefined;
  return s.replace(/[:-]/g, '').match(/../g)!.join(':');
}

/** The length-prefixed fields of an SSH public key blob, or undefined when they do not fill it exactly. */
function sshFields(bytes: Buffer): Buffer[] | undefined {
  const fields: Buffer[] = [];
  let at = 0;
  while (at < bytes.length) {
    if (at + 4 > bytes.length) return undefined;
    const len = bytes.readUInt32BE(at);
    if (at + 4 + len > bytes.length) return undefined;
    fields.push(bytes.subarray(at + 4, at + 4 + len));
    at += 4 + len;
  }
  return fields;
}

/**
 * "ssh-ed25519 AAAA... comment" -> "ssh-ed25519 AAAA..." when the blob really
 * is a whole key of that type. A key cut short (a '+' of its base64 turned
 * into a space by form decoding) is refused, not stored.
 */
export function parseHostKey(raw: unknown): string | undefined {
  if (typeof raw !== 'string') return undefined;
  const [type, blob] = raw.trim().split(/\s+/);
  if (!type || !blob || !KEY_TYPES.has(type) || !/^[A-Za-z0-9+/]+={0,2}$/.test(blob)) return undefined;
  const fields = sshFields(Buffer.from(blob, 'base64'));
  if (!fields || fields[0]?.toString('latin1') !== type) return undefined;
  if (type === 'ssh-ed25519' && (fields.length !== 2 || fields[1]!.length !== 32)) return undefined;
  if (fields.length < 2) return undefined;
  return `${type} ${blob}`;
}

/** The peer's address without the IPv4-mapped prefix. */
export function peerAddress(remote: string | undefined): string {
  const a = remote ?? '';
  return a.startsWith('::ffff:') && net.isIPv4(a.slice(7)) ? a.slice(7) : a;
}

export type Parsed = { ok: true; callback: Callback } | { ok: false; status: 400; error: string };

function one(v: unknown): unknown {
  return Array.isArray(v) ? v[0] : v;
}

/** Fields from the query string, or from a form or JSON body; the host key only from the body. */
export function parseCallback(query: Record<string, unknown>, body: unknown, peer: string): Parsed {
  const b = body !== null && typeof body === 'object' ? (body as Record<string, unknown>) : {};
  const field = (k: string) => one(query[k]) ?? one(b[k]);
  const host = parseHostName(field('host'));
  if (!host) return { ok: false, status: 400, error: 'host: expected a host name (letters, digits, dashes, dots)' };
  const mac = parseMac(field('mac'));
  if (!mac) return { ok: false, status: 400, error: 'mac: expected a MAC address such as 52:54:00:12:34:56' };
  const rawIp = field('ip');
  const ip = rawIp === undefined || rawIp === '' ? peer : String(rawIp);
  if (net.isIP(ip) === 0) return { ok: false, status: 400, error: 'ip: expected an IPv4 or IPv6 address' };
  const rawKey = one(b.hostkey) ?? one(b.hostKey) ?? (typeof body === 'string' && body.trim() ? body : undefined);
  let hostKey: string | undefined;
  if (rawKey !== undefined) {
    hostKey = parseHostKey(rawKey);
    if (!hostKey) return { ok: false, status: 400, error: 'hostkey: expected an SSH public key such as "ssh-ed25519 AAAA..."' };
  }
  return { ok: true, callback: { host, mac, ip, hostKey } };
}

export function tokenOf(query: Record<string, unknown>, body: unknown, header: string | undefined): string | undefined {
  const b = body !== null && typeof body === 'object' ? (body as Record<string, unknown>) : {};
  const t = one(query.token) ?? one(b.token) ?? header?.replace(/^Bearer\s+/i, '');
  return typeof t === 'string' ? t : undefined;
}
