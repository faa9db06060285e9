/** SSH's length-prefixed strings, read one after another (RFC 4251 section 5). */
function reader(data: Buffer): () => Buffer | undefined {
  let at = 0;
  return () => {
    if (at + 4 > data.length) return undefined;
    const end = at + 4 + data.readUInt32BE(at);
    if (end > data.length) return undefined;
    const s = data.subarray(at + 4, end);
    at = end;
    return s;
  };
}

const MAGIC = Buffer.from('openssh-key-v1\0');

/**
 * The public half of an unencrypted OpenSSH private key, read from the key
 * file's own header (OpenSSH's PROTOCOL.key: the magic, cipher, kdf and its
 * options, the number of keys, then each public key blob in the clear), so
 * that a command that only needs the lab's public key line does not load
 * ssh2 (28 ms of `lab image build`'s start). Undefined for anything else: the
 * caller then asks ssh2, whose error says what is wrong.
 */
export function publicKeyOf(privateKey: string): { type: string; blob: Buffer } | undefined {
  const m = /-----BEGIN OPENSSH PRIVATE KEY-----([A-Za-z0-9+/=\s]+)-----END OPENSSH PRIVATE KEY-----/.exec(privateKey);
  if (!m) return undefined;
  const data = Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
  if (!data.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
  const rest = data.subarray(MAGIC.length);
  const next = reader(rest);
  const cipher = next()?.toString();
  const kdf = next();
  const kdfOptions = next();
  if (cipher !== 'none' || !kdf || !kdfOptions) return undefined;
  // One key: the count is a bare uint32 between the kdf options and the blob.
  const counted = rest.subarray(4 + cipher.length + 4 + kdf.length + 4 + kdfOptions.length);
  if (counted.length < 4 || counted.readUInt32BE(0) !== 1) return undefined;
  const blob = reader(counted.subarray(4))();
  const fields = blob && reader(blob);
  const type = fields?.()?.toString();
  const key = fields?.();
  return blob && type && key && /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521))$/.test(type) ? { type, blob } : undefined;
}
