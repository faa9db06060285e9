import { LabError } from '../errors.js';
import { fingerprint } from '../inventory/values.js';
import type { Duplex } from 'node:stream';
import { createRequire } from 'node:module';
import type ssh2 from 'ssh2';
import type { SFTPWrapper, ClientChannel } from 'ssh2';
import { shellWord } from '../util/shell.js';

// ssh2 (CommonJS) is required when a session is first opened: commands that open none do not load it.
const require = createRequire(import.meta.url);

/**
 * One SSH connection to one host, reused by every command and upload of an
 * operation. The host key is pinned: only the key the host sent at its boot
 * callback is accepted, and only its algorithm is offered, so a host that
 * changed (or a different machine on its address) is refused, never trusted
 * on first use.
 */

export interface SessionTarget {
  host: string;
  address: string;
  port: number;
  /** "ssh-ed25519 AAAA..." as recorded at the callback. */
  hostKey: string;
  privateKey: string;
  connectTimeoutMs: number;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Why a connection failed, told apart because people fix them differently. */
export type ConnectFailure = 'unreachable' | 'hostkey' | 'auth' | 'timeout';

/** SSH to a host failed: how, for the outcome (refused, unreachable, timeout). */
export class SessionError extends LabError {
  constructor(
    message: string,
    readonly failure: ConnectFailure | 'command-timeout' | 'transfer',
  ) {
    super(message, { kind: 'session' });
    this.name = 'SessionError';
  }
}

/** The algorithm and raw blob of an OpenSSH public key line. */
function parseKey(line: string): { type: string; blob: Buffer } {
  const [type, b64] = line.trim().split(/\s+/);
  return { type: type ?? '', blob: Buffer.from(b64 ?? '', 'base64') };
}

export class Session {
  private sftpChannel?: Promise<SFTPWrapper>;

  private constructor(
    readonly target: SessionTarget,
    private readonly client: ssh2.Client,
  ) {}

  static open(t: SessionTarget): Promise<Session> {
    const pinned = parseKey(t.hostKey);
    return new Promise((resolve, reject) => {
      const client = new (require('ssh2') as typeof ssh2).Client();
      let offered: Buffer | undefined;
      let settled = false;
      const done = (e?: SessionError) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (e) {
          client.destroy();
          reject(e);
        } else resolve(new Session(t, client));
      };
      // ssh2's readyTimeout covers the handshake only; this covers a TCP connect that hangs too.
      const timer = setTimeout(
        () => done(new SessionError(`no SSH answer from ${t.address}:${t.port} within ${t.connectTimeoutMs / 1000} s`, 'timeout')),
        t.connectTimeoutMs,
      );
      client.on('ready', () => done());
      client.on('error', (e: Error & { level?: string; code?: string }) => {
        if (offered && !offered.equals(pinned.blob)) {
          done(
            new SessionError(
              `host key mismatch: ${t.host} (${t.address}:${t.port}) offered ${fingerprint(offered)}, its boot callback recorded ${fingerprint(pinned.blob)}; refused` +
                ' (if the host was rebuilt, its next boot callback records the new key)',
              'hostkey',
            ),
          );
        } else if (e.level === 'client-authentication') {
          done(new SessionError(`${t.host} refused the lab's SSH key (root@${t.address}:${t.port})`, 'auth'));
        } else if (e.level === 'client-timeout') {
          done(new SessionError(`no SSH handshake with ${t.address}:${t.port} within ${t.connectTimeoutMs / 1000} s`, 'timeout'));
        } else {
          done(new SessionError(`cannot reach ${t.address}:${t.port}: ${e.code ?? e.message}`, 'unreachable'));
        }
      });
      client.on('close', () => done(new SessionError(`${t.address}:${t.port} closed the connection before SSH was ready`, 'unreachable')));
      client.connect({
        host: t.address,
        port: t.port,
        username: 'root',
        privateKey: t.privateKey,
        readyTimeout: t.connectTimeoutMs,
        keepaliveInterval: 5000,
        keepaliveCountMax: 3,
        algorithms: { serverHostKey: [pinned.type as ssh2.ServerHostKeyAlgorithm] },
        hostVerifier: (key: Buffer) => {
          offered = key;
          return key.equals(pinned.blob);
        },
      });
    });
  }

  /** Run a command; its exit code is returned, not thrown. A command over its time is killed. */
  exec(command: string, timeoutMs: number, stdin?: string): Promise<ExecResult> {
    return new Promise((resolve, reject) => {
      this.client.exec(command, (err, stream: ClientChannel) => {
        if (err) return reject(new SessionError(`cannot run a command on ${this.target.host}: ${err.message}`, 'unreachable'));
        const out: Buffer[] = [];
        const errOut: Buffer[] = [];
        let code: number | undefined;
        let signal: string | undefined;
        const timer = setTimeout(() => {
          stream.signal('KILL');
          stream.close();
          reject(new SessionError(`timed out after ${timeoutMs / 1000} s: ${command}`, 'command-timeout'));
        }, timeoutMs);
        stream.on('data', (d: Buffer) => out.push(d));
        stream.stderr.on('data', (d: Buffer) => errOut.push(d));
        stream.on('exit', (c: number | null, sig?: string) => {
          code = c ?? undefined;
          signal = sig;
        });
        stream.on('close', () => {
          clearTimeout(timer);
          resolve({
            code: code ?? (signal ? 128 : 255),
            stdout: Buffer.concat(out).toString(),
            stderr: Buffer.concat(errOut).toString(),
          });
        });
        if (stdin !== undefined) stream.end(stdin);
        else stream.end();
      });
    });
  }

  private sftp(): Promise<SFTPWrapper> {
    this.sftpChannel ??= new Promise((resolve, reject) =>
      this.client.sftp((err, sftp) => (err ? reject(new SessionError(`no SFTP on ${this.target.host}: ${err.message}`, 'transfer')) : resolve(sftp))),
    );
    return this.sftpChannel;
  }

  /**
   * Write a file with a mode, atomically: to a temporary name beside it, then
   * renamed over it, so a running program is never replaced half-written. A
   * missing folder is made (one extra command, only then).
   */
  async write(remote: string, data: Buffer, mode: number, timeoutMs: number): Promise<void> {
    const sftp = await this.sftp();
    const tmp = `${remote}.lab-${process.pid}`;
    const attempt = () =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new SessionError(`upload of ${remote} timed out after ${timeoutMs / 1000} s`, 'command-timeout')), timeoutMs);
        const finish = (e?: Error | null) => {
          clearTimeout(timer);
          return e ? reject(e) : resolve();
        };
        sftp.writeFile(tmp, data, { mode }, (e) => {
          if (e) return finish(e);
          // The mode given at open is filtered by the server's umask; set it outright.
          sftp.chmod(tmp, mode, (e2) => {
            if (e2) return finish(e2);
            sftp.ext_openssh_rename(tmp, remote, (e3) => finish(e3));
          });
        });
      });
    try {
      await attempt();
    } catch (e) {
      if ((e as { code?: number }).code !== 2 /* SFTP no such file */) throw transferError(remote, e);
      const dir = remote.slice(0, remote.lastIndexOf('/')) || '/';
      const r = await this.exec(`mkdir -p ${shellWord(dir)}`, timeoutMs);
      if (r.code !== 0) throw new SessionError(`cannot make ${dir}: ${r.stderr.trim()}`, 'transfer');
      await attempt().catch((e2: unknown) => {
        throw transferError(remote, e2);
      });
    }
  }

  /** A TCP stream to a port on the host, through this connection (for hosts behind NAT). */
  forward(port: number): Promise<Duplex> {
    return new Promise((resolve, reject) =>
      this.client.forwardOut('127.0.0.1', 0, '127.0.0.1', port, (err, channel) =>
        err
          ? reject(new SessionError(`${err.message.replace(/^\(SSH\) Channel open failure: /, '').toLowerCase()} (through its SSH connection)`, 'transfer'))
          : resolve(channel),
      ),
    );
  }

  close(): void {
    this.client.end();
  }
}

function transferError(remote: string, e: unknown): SessionError {
  if (e instanceof SessionError) return e;
  return new SessionError(`cannot upload ${remote}: ${e instanceof Error ? e.message : String(e)}`, 'transfer');
}
