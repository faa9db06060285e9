import { generateKeyPair, randomBytes, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';

const generate = promisify(generateKeyPair);

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const sshString = (s: Buffer | string) => {
  const b = Buffer.isBuffer(s) ? s : Buffer.from(s);
  return Buffer.concat([u32(b.length), b]);
};

/** An ed25519 private key as OpenSSH writes one, unencrypted (PROTOCOL.key), which dropbearconvert reads. */
function opensshEd25519(key: KeyObject): string {
  const jwk = key.export({ format: 'jwk' });
  const seed = Buffer.from(jwk.d!, 'base64url');
  const pub = Buffer.from(jwk.x!, 'base64url');
  const blob = Buffer.concat([sshString('ssh-ed25519'), sshString(pub)]);
  const check = randomBytes(4);
  let secret = Buffer.concat([check, check, sshString('ssh-ed25519'), sshString(pub), sshString(Buffer.concat([seed, pub])), sshString('')]);
  const pad = (8 - (secret.length % 8)) % 8;
  secret = Buffer.concat([secret, Buffer.from(Array.from({ length: pad }, (_, i) => i + 1))]);
  const body = Buffer.concat([Buffer.from('openssh-key-v1\0'), sshString('none'), sshString('none'), sshString(''), u32(1), sshString(blob), sshString(secret)]);
  const lines = body.toString('base64').match(/.{1,70}/g)!;
  return ['-----BEGIN OPENSSH PRIVATE KEY-----', ...lines, '-----END OPENSSH PRIVATE KEY-----', ''].join('\n');
}

/**
 * SSH host keys for a host, made here so its guest need not make them: an
 * RSA key takes a TCG guest 0.6-5 s of its one CPU (random primes, so its
 * time varies from install to install), this machine's native crypto tens
 * of milliseconds, off the event loop. ed25519 first, then RSA (PKCS#1
 * PEM), the order the mini guest reads them in. The guest still reports
 * them at its callback, where they are pinned as any host's are.
 */
export async function makeHostKeys(): Promise<string> {
  const [ed, rsa] = await Promise.all([
    generate('ed25519'),
    generate('rsa', { modulusLength: 2048, publicExponent: 0x10001, privateKeyEncoding: { type: 'pkcs1', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } }),
  ]);
  return opensshEd25519(ed.privateKey) + rsa.privateKey;
}
