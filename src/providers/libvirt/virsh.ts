import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { LabError, ToolError } from '../../errors.js';

/**
 * One virsh shell per hypervisor, kept for the life of a command: a remote
 * URI costs an SSH session (a login, seconds on some machines), so lab pays
 * it once per hypervisor, not once per verb. Commands go to the shell's
 * stdin one at a time; each is followed by `echo <marker>`, whose line ends
 * its output. The shell is lab's child with a pipe for stdin, so it ends
 * with lab: nothing outlives the command (an SSH master kept past a
 * hypervisor's restart talked to the old daemon once).
 */

/** A hypervisor that did not answer, or refused the connection: callers place elsewhere, or report it. */
export class HypervisorDown extends LabError {
  constructor(
    readonly hypervisor: string,
    readonly reason: string,
  ) {
    super(`hypervisor ${hypervisor}: ${reason}`, { kind: 'environment', exitCode: 3 });
    this.name = 'HypervisorDown';
  }
}

interface Pending {
  line: string;
  /** When it was sent (performance.now()), for --debug's round-trip times. */
  sent?: number;
  marker: string;
  resolve: (out: string) => void;
  reject: (e: Error) => void;
  timeoutMs: number;
}

/** virsh's shell splits on blanks and takes "..." with backslash escapes; newlines end a command. */
export function virshQuote(arg: string): string {
  if (/[\n\r]/.test(arg)) throw new LabError(`a virsh argument holds a line break: ${JSON.stringify(arg)}`);
  return `"${arg.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

export interface VirshOptions {
  /** The hypervisor's name in environments.ts, for messages. */
  name: string;
  uri: string;
  /** Per call; the shell is killed when one passes (a hypervisor gone mid-call). */
  timeoutMs?: number;
  /** A shell unused this long is closed (the monitor daemon keeps none open between cycles). */
  idleMs?: number;
  /** Extra environment for virsh (LIBVIRT_DEFAULT_URI is never read: -c is always given). */
  env?: Record<string, string>;
}

export class Virsh {
  private child?: ChildProcessWithoutNullStreams;
  private buf = '';
  private queue: Pending[] = [];
  private current?: Pending;
  private timer?: NodeJS.Timeout;
  private idle?: NodeJS.Timeout;
  /** After a failure to connect, calls fail at once until then (ms since epoch), with the reason kept. */
  private downUntil = 0;
  private downReason = '';
  /** Round trips made, for the benchmarks' control-path figure. */
  calls = 0;

  constructor(private readonly o: VirshOptions) {}

  /** Run one virsh command; its output, or a ToolError with what virsh said. */
  call(args: string[], opts: { timeoutMs?: number } = {}): Promise<string> {
    if (Date.now() < this.downUntil) return Promise.reject(new HypervisorDown(this.o.name, this.downReason));
    const line = args.map(virshQuote).join(' ');
    return new Promise((resolve, reject) => {
      this.queue.push({ line, marker: `@@lab-${randomBytes(6).toString('hex')}@@`, resolve, reject, timeoutMs: opts.timeoutMs ?? this.o.timeoutMs ?? 60_000 });
      this.next();
    });
  }

  /** Like call, but undefined where virsh reports an error (a missing domain or volume). */
  async tryCall(args: string[]): Promise<string | undefined> {
    try {
      return await this.call(args);
    } catch (e) {
      if (e instanceof ToolError) return undefined;
      throw e;
    }
  }

  /** Ends the shell; a call still waiting fails (it would never be answered). */
  close(): void {
    clearTimeout(this.idle);
    clearTimeout(this.timer);
    const c = this.child;
    this.child = undefined;
    if (c) {
      c.stdin.end();
      c.kill('SIGTERM');
    }
    this.rejectAll(new HypervisorDown(this.o.name, 'its virsh shell was closed'));
  }

  private spawn(): ChildProcessWithoutNullStreams {
    // One pipe for both streams keeps an "error:" line between the markers of the command that printed it.
    const c = spawn('sh', ['-c', 'exec virsh -q -c "$0" 2>&1', this.o.uri], { env: { ...process.env, ...this.o.env, LANG: 'C', LC_ALL: 'C' } });
    c.stdout.setEncoding('utf8');
    c.stdout.on('data', (d: string) => {
      this.buf += d;
      this.drain();
    });
    c.stdin.on('error', () => undefined);
    c.on('error', (e) => this.fail(c, (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'virsh is not installed (apt-get install libvirt-clients)' : e.message));
    c.on('exit', () => this.fail(c, connectFailure(this.buf) || 'virsh ended'));
    // Neither the shell nor its pipes keep lab running: a pending call's timer does.
    c.unref();
    (c.stdout as unknown as { unref?: () => void }).unref?.();
    (c.stdin as unknown as { unref?: () => void }).unref?.();
    return c;
  }

  private next(): void {
    if (this.current || this.queue.length === 0) return;
    clearTimeout(this.idle);
    const p = this.queue.shift()!;
    this.current = p;
    this.calls++;
    if (!this.child) {
      this.buf = '';
      this.child = this.spawn();
    }
    const c = this.child;
    this.timer = setTimeout(() => this.fail(c, `no answer in ${Math.round(p.timeoutMs / 1000)} s`), p.timeoutMs);
    p.sent = performance.now();
    c.stdin.write(`${p.line}\necho ${p.marker}\n`);
  }

  private drain(): void {
    const p = this.current;
    if (!p) return;
    // The marker's line ends with a newline or runs into the next prompt, as virsh pleases: whatever follows is dropped with the next command's echo.
    const end = `virsh # echo ${p.marker}\n${p.marker}`;
    const at = this.buf.indexOf(end);
    if (at < 0) return;
    let out = this.buf.slice(0, at);
    this.buf = this.buf.slice(at + end.length);
    clearTimeout(this.timer);
    this.current = undefined;
    // One line per round trip, with its time: the benchmarks add them up per VM.
    if (process.env.LAB_DEBUG) process.stderr.write(`debug: virsh ${this.o.name} ${(performance.now() - p.sent!).toFixed(1)} ms: ${p.line}\n`);
    const echoed = `virsh # ${p.line}\n`;
    const start = out.indexOf(echoed);
    if (start >= 0) out = out.slice(start + echoed.length);
    const errors = out.split('\n').filter((l) => l.startsWith('error: ')).map((l) => l.slice(7));
    // The connection went away under a live shell: virsh says so per command; that is the hypervisor, not the verb.
    const lost = errors.find((e) => /failed to (re)?connect|no valid connection|Cannot recv data|Cannot write data|End of file while reading|Disconnected from/i.test(e));
    if (lost && this.child) {
      this.current = p;
      return this.fail(this.child, connectFailure(out) || lost);
    }
    if (errors.length) p.reject(new ToolError(`hypervisor ${this.o.name}: ${p.line.replace(/"/g, '')}: ${errors.join(' / ')}`, 'virsh', 1, errors.join('\n')));
    else p.resolve(out.replace(/\n+$/, ''));
    this.idle = setTimeout(() => this.close(), this.o.idleMs ?? 20_000);
    this.idle.unref();
    this.next();
  }

  /** The shell ended or hung: its calls fail, the next call opens a new one (a restarted hypervisor is reached anew). */
  private fail(c: ChildProcessWithoutNullStreams, reason: string): void {
    if (this.child !== c) return;
    clearTimeout(this.timer);
    this.child = undefined;
    c.kill('SIGKILL');
    this.downUntil = Date.now() + 5_000;
    this.downReason = reason;
    this.rejectAll(new HypervisorDown(this.o.name, reason));
  }

  private rejectAll(err: Error): void {
    const all = [...(this.current ? [this.current] : []), ...this.queue];
    this.current = undefined;
    this.queue = [];
    for (const p of all) p.reject(err);
  }
}

/**
 * Why a connection failed, in one line, from what virsh printed: ssh's own
 * words where it refused (a changed host key names the file to mend).
 */
export function connectFailure(text: string): string {
  const lines = text.replace(/\r/g, '').split('\n').map((l) => l.replace(/^(virsh # )+/, '').trim());
  if (lines.some((l) => l.includes('REMOTE HOST IDENTIFICATION HAS CHANGED'))) {
    const offending = lines.find((l) => /^Offending .* key in /.test(l))?.replace(/^Offending .* key in /, '');
    return `its SSH host key is not the one known before (ssh refused it as a possible man-in-the-middle)${offending ? `; if it was reinstalled, remove line ${offending.replace(/:(\d+)$/, ' $1')}` : ''}`;
  }
  const errors = lines
    .filter((l) => l.startsWith('error: '))
    .map((l) => l.slice(7).replace(/^Cannot recv data: /, '').replace(/: Connection reset by peer$/, ''))
    .filter((l) => !/^failed to connect to the hypervisor$/i.test(l) && !/^@+$/.test(l));
  return errors.slice(-2).join(' / ');
}
