import net from 'node:net';
import { createHash } from 'node:crypto';

/**
 * The values lab keeps about hosts, parsed from untrusted text (HTTP
 * requests, command output, the inventory file itself): what passes is safe
 * to write into other tools' files (ssh_config, known_hosts, Ansible's
 * inventory), since it holds no spaces, quotes or control characters.
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

/**
 * A host name as DNS allows it (lower case); anything else, path tricks
 * included, is refused. ASCII is checked before lower-casing: Unicode's
 * lower-casing turns some letters into ASCII ones (the Kelvin sign into k).
 */
export function parseHostName(raw: unknown): string | undefined {
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > 253 || !/^[\x21-\x7e]+$/.test(raw)) return undefined;
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

/** A host's keys as it offers them: the one lab's own connections pin, and the others (of other types). */
export interface HostKeys {
  hostKey: string;
  otherKeys: string[];
}

/**
 * Every host key a host sent, one per line (a .pub file each, concatenated)
 * or one per repeated field. ed25519 is the key lab pins for its own
 * connections when the host has one; the others are pinned for the clients
 * that pick them (Go's SSH library picks RSA before ed25519). Undefined when
 * a line is not a key, or two are of one type: a host holds one of each.
 */
export function parseHostKeys(raw: unknown): HostKeys | undefined {
  const parts = Array.isArray(raw) ? raw : [raw];
  if (!parts.every((p): p is string => typeof p === 'string')) return undefined;
  const lines = parts.flatMap((p) => p.split(/\r?\n/)).filter((l) => l.trim() !== '');
  if (lines.length === 0 || lines.length > KEY_TYPES.size) return undefined;
  const keys: string[] = [];
  for (const line of lines) {
    const key = parseHostKey(line);
    if (!key || keys.some((k) => keyType(k) === keyType(key))) return undefined;
    keys.push(key);
  }
  const primary = keys.find((k) => k.startsWith('ssh-ed25519 ')) ?? keys[0]!;
  return { hostKey: primary, otherKeys: keys.filter((k) => k !== primary) };
}

/** Every key of a host (or of a callback): the one lab pins for itself first, then the others. */
export function allKeys(k: { hostKey?: string; otherKeys?: string[] }): string[] {
  return k.hostKey ? [k.hostKey, ...(k.otherKeys ?? [])] : [];
}

/** The type of a key line ("ssh-rsa" of "ssh-rsa AAAA..."). */
export function keyType(key: string): string {
  return key.split(' ')[0]!;
}

/** OpenSSH's fingerprint of a key blob, as `ssh-keygen -lf` prints it. */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** The fingerprint of a public key line ("ssh-ed25519 AAAA..."). */
export function keyFingerprint(key: string): string {
  return fingerprint(Buffer.from(key.split(' ')[1] ?? '', 'base64'));
}

/** An IPv4 or IPv6 address, as written. */
export function isIp(raw: unknown): raw is string {
  return typeof raw === 'string' && net.isIP(raw) !== 0;
}
