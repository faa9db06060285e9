import net from 'node:net';
import type { Callback } from '../inventory/boots.js';
import { parseHostKeys, parseHostName, parseMac } from '../inventory/values.js';
import { INSTALL_STAGES } from '../inventory/types.js';

/**
 * Parsing of boot callbacks and names at the HTTP edge: what comes in is
 * untrusted text; what goes on is a typed Callback or a reason it was refused.
 */

/** The peer's address without the IPv4-mapped prefix. */
export function peerAddress(remote: string | undefined): string {
  const a = remote ?? '';
  return a.startsWith('::ffff:') && net.isIPv4(a.slice(7)) ? a.slice(7) : a;
}

export type Parsed = { ok: true; callback: Callback } | { ok: false; status: 400; error: string };

function one(v: unknown): unknown {
  return Array.isArray(v) ? v[0] : v;
}

/** The host a callback speaks for, before anything else of it is looked at (its token is that host's). */
export function claimedHost(query: Record<string, unknown>, body: unknown): string | undefined {
  const b = body !== null && typeof body === 'object' ? (body as Record<string, unknown>) : {};
  return parseHostName(one(query.host) ?? one(b.host));
}

/** Fields from the query string, or from a form or JSON body; the host keys only from the body. */
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
  const rawStage = field('stage');
  const stage = rawStage === undefined || rawStage === '' ? undefined : INSTALL_STAGES.find((x) => x === rawStage);
  if (rawStage !== undefined && rawStage !== '' && !stage) return { ok: false, status: 400, error: `stage: expected one of ${INSTALL_STAGES.join(', ')}` };
  // Every key the host holds: lines of one body or field, or a field repeated (curl -F hostkey=@... per key).
  const rawKey = b.hostkey ?? b.hostKey ?? (typeof body === 'string' && body.trim() ? body : undefined);
  let keys: { hostKey?: string; otherKeys?: string[] } = {};
  if (rawKey !== undefined) {
    const parsed = parseHostKeys(rawKey);
    if (!parsed) return { ok: false, status: 400, error: 'hostkey: expected SSH public keys, one per line and one of each type, such as "ssh-ed25519 AAAA..."' };
    keys = parsed.otherKeys.length ? parsed : { hostKey: parsed.hostKey };
  }
  return { ok: true, callback: { host, mac, ip, ...keys, ...(stage ? { stage } : {}) } };
}

/** The first token given (query, body, then Authorization: Bearer); an empty one does not hide a later one. */
export function tokenOf(query: Record<string, unknown>, body: unknown, header: string | undefined): string | undefined {
  const b = body !== null && typeof body === 'object' ? (body as Record<string, unknown>) : {};
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '')?.[1];
  for (const t of [one(query.token), one(b.token), bearer]) if (typeof t === 'string' && t !== '') return t;
  return undefined;
}
