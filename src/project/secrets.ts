import { existsSync, readFileSync, chmodSync, statSync } from 'node:fs';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { LabPaths } from './paths.js';
import { LabError, messageOf } from '../errors.js';
import { createOnce, privateDir } from '../util/files.js';
import { publicKeyOf } from './openssh-key.js';

/**
 * Per-lab secrets, made on first use and kept in inventory/ (git-ignored),
 * mode 0600: the SSH key pair hosts trust for root, and the lab's callback
 * secret. The secret itself never leaves the lab host: each host gets a
 * token derived from it and its name (hostToken), so a guest, or anyone who
 * reads one kickstart, can call back as that host only.
 */
export interface Secrets {
  privateKeyPath: string;
  privateKey: string;
  /** One line, "ssh-ed25519 AAAA... lab@<name>", for authorized_keys and kickstart sshkey. */
  publicKey: string;
  /** The lab's callback secret (inventory/callback-token). */
  secret: string;
}

/** The callback token of one host: an HMAC of its name under the lab's secret. */
export function hostToken(secret: string, host: string): string {
  return createHmac('sha256', secret).update(`lab callback\0${host}`).digest('base64url').slice(0, 32);
}

function readPrivate(file: string): string {
  // A secret someone made readable by others is put back to 0600.
  if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
  return readFileSync(file, 'utf8');
}

// ssh2 (a CommonJS module) is required when a key is made or read: a command that needs neither does not load it.
const require = createRequire(import.meta.url);
const ssh2 = () => require('ssh2') as typeof import('ssh2');

/**
 * An ed25519 key pair in OpenSSH's format. ssh2's generator strips a public
 * key's leading zero bytes, so one key in 256 comes out malformed
 * (mscdex/ssh2#1390, #1513, open): such a key is drawn again.
 */
export function generateEd25519(comment: string): string {
  for (;;) {
    const key = ssh2().utils.generateKeyPairSync('ed25519', { comment }).private;
    if (!(ssh2().utils.parseKey(key) instanceof Error)) return key;
  }
}

/** "type base64" of a private key's public half: from the file's header where it can, else through ssh2 (which says what is wrong). */
function publicHalf(file: string, privateKey: string): string {
  const header = publicKeyOf(privateKey);
  if (header) return `${header.type} ${header.blob.toString('base64')}`;
  const parsed = ssh2().utils.parseKey(privateKey);
  if (parsed instanceof Error) throw new LabError(`${file}: not a usable private key: ${parsed.message}`);
  const key = Array.isArray(parsed) ? parsed[0]! : parsed;
  return `${key.type} ${key.getPublicSSH().toString('base64')}`;
}

export function ensureSecrets(paths: LabPaths, labName: string): Secrets {
  try {
    privateDir(paths.inventory);
    const comment = `lab@${labName}`;
    if (!existsSync(paths.sshKey)) createOnce(paths.sshKey, generateEd25519(comment), 0o600);
    if (!existsSync(paths.token)) createOnce(paths.token, `${randomBytes(24).toString('base64url')}\n`, 0o600);
    const privateKey = readPrivate(paths.sshKey);
    const publicKey = `${publicHalf(paths.sshKey, privateKey)} ${comment}`;
    if (!existsSync(paths.sshPublicKey)) createOnce(paths.sshPublicKey, `${publicKey}\n`, 0o644);
    const secret = readPrivate(paths.token).trim();
    if (!/^[A-Za-z0-9_-]{16,}$/.test(secret)) throw new LabError(`${paths.token}: not a valid callback secret; delete it to make a new one (hosts installed since then must be reinstalled)`);
    return { privateKeyPath: paths.sshKey, privateKey, publicKey, secret };
  } catch (e) {
    if (e instanceof LabError) throw e;
    throw new LabError(`cannot create the lab's secrets in ${paths.inventory}: ${messageOf(e)}`);
  }
}

/** Constant-time comparison, so the token cannot be guessed byte by byte from reply times. */
export function tokenMatches(expected: string, given: string | undefined): boolean {
  if (!given) return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Where an environment's own key pair is kept (environments.ts `trust: true`). */
export const envKeyPath = (paths: LabPaths, env: string) => path.join(paths.inventory, 'env-keys', `${env}_ed25519`);

/** An environment's key pair, made on first use, private (0600) like the lab's own. */
export function ensureEnvKey(paths: LabPaths, labName: string, env: string): { privateKey: string; publicKey: string } {
  const file = envKeyPath(paths, env);
  try {
    privateDir(path.dirname(file));
    const comment = `lab-env:${env}@${labName}`;
    if (!existsSync(file)) createOnce(file, generateEd25519(comment), 0o600);
    const privateKey = readPrivate(file);
    return { privateKey, publicKey: `${publicHalf(file, privateKey)} ${comment}` };
  } catch (e) {
    if (e instanceof LabError) throw e;
    throw new LabError(`cannot create the key of environment ${env} in ${path.dirname(file)}: ${messageOf(e)}`);
  }
}
