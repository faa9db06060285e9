import { mkdtempSync, readdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';
import ssh2 from 'ssh2';
import { hostToken } from '../src/project/secrets.js';

export const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const cli = path.join(repo, 'dist', 'cli.js');

export interface Run {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** The public lines of SSH private keys in PEM, one after another (lab's host keys for a VM: ed25519, then RSA). */
export function publicKeysOf(pems: string): string[] {
  return pems.split(/(?=-----BEGIN )/).map((pem) => {
    const k = ssh2.utils.parseKey(pem);
    if (k instanceof Error) throw k;
    return `${k.type} ${k.getPublicSSH().toString('base64')}`;
  });
}

/** Every command line of this machine's processes, as /proc has them (arguments joined by spaces): what any user can read with ps. */
export function allCommandLines(): string {
  const out: string[] = [];
  for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      out.push(readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' '));
    } catch {
      // gone meanwhile
    }
  }
  return out.join('\n');
}

/** Run the real, built CLI. */
export async function lab(args: string[], opts: { netns?: string; prefix?: string[]; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<Run> {
  const prefix = opts.prefix ?? (opts.netns ? ['ip', 'netns', 'exec', opts.netns] : []);
  const [file, ...argv] = [...prefix, process.execPath, cli, ...args] as [string, ...string[]];
  const r = await execa(file, argv, { reject: false, env: opts.env, timeout: opts.timeoutMs ?? 60_000 });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** A fresh lab folder from `lab init`, removed by the returned cleanup. */
export async function tempLab(edit?: (source: string) => string): Promise<{ dir: string; cleanup: () => void }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'lab-test-'));
  const r = await lab(['init', dir, '--force']);
  if (r.exitCode !== 0) throw new Error(`lab init failed: ${r.stderr}`);
  // A kickstart that never calls back, for stalled-install tests.
  const ks = readFileSync(path.join(dir, 'kickstart', 'mini-ks.cfg'), 'utf8');
  // Its %post (the callback that carries the key) sleeps instead; %pre still reports the install started.
  const silent = ks.replace(/^wget .*--post-data "\$\{key\}".*$/m, 'sleep 600');
  if (silent === ks) throw new Error("the scaffold's mini-ks.cfg no longer has the %post callback the silent kickstart replaces");
  writeFileSync(path.join(dir, 'kickstart', 'silent.cfg'), silent);
  if (edit) {
    const file = path.join(dir, 'environments.ts');
    const source = readFileSync(file, 'utf8');
    const edited = edit(source);
    // An edit whose text is no longer in the scaffold would leave the test running on something else.
    if (edited === source) throw new Error('the edit of environments.ts changed nothing: the scaffold no longer has what the test replaces');
    writeFileSync(file, edited);
  }
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The scaffold with user networking: the server binds loopback, as tests may. */
export const userNetworking = (s: string) => s.replace("mode: 'bridge'", "mode: 'user'");

export interface Served {
  url: string;
  process: ResultPromise;
  output: () => string;
  stop: () => Promise<void>;
}

/**
 * `lab serve` as a child process on loopback: on a free port, or on the lab's
 * configured one (where installed guests call back).
 */
export async function serve(dir: string, opts: { configuredPort?: boolean; args?: string[]; env?: Record<string, string>; nodeArgs?: string[] } = {}): Promise<Served> {
  const port = opts.configuredPort ? [] : ['--port', '0'];
  const child = execa(process.execPath, [...(opts.nodeArgs ?? []), cli, 'serve', '--lab', dir, '--bind', '127.0.0.1', ...port, ...(opts.args ?? [])], { reject: false, all: true, env: opts.env });
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`lab serve did not start: ${out}`)), 20_000);
    let started = false;
    child.all!.on('data', (d: Buffer) => {
      out += d.toString();
      // Looked for until found only: a storm's thousand lines must not each cost a scan of all before them (the bench's client shares this process).
      const m = started ? null : /serving on (http:\/\/\S+)/.exec(out);
      if (m) {
        started = true;
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    void child.then(() => reject(new Error(`lab serve exited: ${out}`)));
  });
  return {
    url,
    process: child,
    output: () => out,
    stop: async () => {
      child.kill('SIGTERM');
      await child;
    },
  };
}

/** The callback token a host of the lab in `dir` calls back with (derived from the lab's secret and its name). */
export function callbackToken(dir: string, host: string): string {
  return hostToken(readFileSync(path.join(dir, 'inventory', 'callback-token'), 'utf8').trim(), host);
}

export function readJson<T>(file: string): T {
  return JSON.parse(readFileSync(file, 'utf8')) as T;
}

/** Wait until check() holds, or fail after ms. */
export async function eventually(check: () => boolean | Promise<boolean>, ms = 10_000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export { freePort } from '../src/providers/ports.js';

/** Run a command over SSH (ssh2), accepting only the host key whose base64 blob is given. */
export function sshRun(port: number, privateKey: string, hostKeyBlob: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = new ssh2.Client();
    c.on('ready', () => {
      c.exec(command, (err, stream) => {
        if (err) return reject(err);
        let out = '';
        stream.on('data', (d: Buffer) => (out += d.toString()));
        stream.on('close', () => {
          c.end();
          resolve(out);
        });
      });
    });
    c.on('error', reject);
    c.connect({
      host: '127.0.0.1',
      port,
      username: 'root',
      privateKey,
      readyTimeout: 20_000,
      hostVerifier: (key: Buffer) => key.toString('base64') === hostKeyBlob,
    });
  });
}

/** Upload content over SFTP (ssh2) with a file mode, accepting only the given host key. */
export function sftpPut(port: number, privateKey: string, hostKeyBlob: string, remote: string, content: string, mode: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = new ssh2.Client();
    c.on('ready', () => {
      c.sftp((err, sftp) => {
        if (err) return reject(err);
        const w = sftp.createWriteStream(remote, { mode });
        w.on('error', reject);
        w.on('close', () => {
          c.end();
          resolve();
        });
        w.end(content);
      });
    });
    c.on('error', reject);
    c.connect({ host: '127.0.0.1', port, username: 'root', privateKey, readyTimeout: 20_000, hostVerifier: (key: Buffer) => key.toString('base64') === hostKeyBlob });
  });
}
