import { consoleText } from '../console.js';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, renameSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { KeyedQueue } from '../../util/queue.js';
import { LabError, UsageError } from '../../errors.js';
import { run } from '../../util/exec.js';
import type { ConsoleAttach, Provider, StartOptions, VmInfo, VmSnapshots, VmSpec, VmState } from '../types.js';
import { accelerator } from './accel.js';
import { qmp } from './qmp.js';
import { effectiveBoot } from '../boot.js';
import { writeFileAtomicSync } from '../../util/files.js';
import { waitUntil } from '../../util/wait.js';
import { hasArgs, runsAs } from '../../util/process.js';

/** A kernel a PXE boot will load, from its TFTP tree (for the KVM probe). */
function kernelIn(dir: string, depth = 3): string | undefined {
  if (depth < 0 || !existsSync(dir)) return undefined;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isFile() && e.name === 'vmlinuz') return p;
    if (e.isDirectory()) {
      const found = kernelIn(p, depth - 1);
      if (found) return found;
    }
  }
  return undefined;
}

/**
 * QEMU: a qcow2 disk per VM, qemu-system-x86_64 daemonized with a pidfile, a
 * QMP socket and the serial console in a file, all under inventory/vms/<name>/.
 */
export class QemuProvider implements Provider {
  readonly name = 'qemu';
  constructor(private readonly vmsDir: string) {}

  private dir(name: string): string {
    return path.join(this.vmsDir, name);
  }
  private file(name: string, f: string): string {
    return path.join(this.dir(name), f);
  }
  /** Unix socket paths are limited to 108 bytes; a deep lab folder gets one in the temp folder. */
  private qmpSocket(name: string): string {
    return this.socketPath(name, 'qmp');
  }
  private consoleSocket(name: string): string {
    return this.socketPath(name, 'console');
  }
  /** A Unix socket's path in the VM's folder, or in the temp folder where that is too long for one (108 bytes). */
  private socketPath(name: string, what: string): string {
    const p = this.file(name, `${what}.sock`);
    return p.length < 100 ? p : path.join(tmpdir(), `lab-${createHash('sha256').update(p).digest('hex').slice(0, 16)}.${what}`);
  }
  private spec(name: string): VmSpec {
    const f = this.file(name, 'vm.json');
    if (!existsSync(f)) throw new UsageError(`no VM "${name}" (nothing at ${this.dir(name)})`, 'see `lab image list`, or `lab env status <env>`');
    return JSON.parse(readFileSync(f, 'utf8')) as VmSpec;
  }
  /**
   * The pid of the VM's QEMU while it runs. QEMU removes its pidfile when it
   * exits, not when it is killed or the machine goes down (runsAs): the
   * process must be a QEMU that writes this very pidfile (another lab's VM
   * may have the same name).
   */
  private pid(name: string): number | undefined {
    const pidfile = this.file(name, 'qemu.pid');
    let pid: number;
    try {
      pid = Number(readFileSync(pidfile, 'utf8').trim());
    } catch {
      return undefined;
    }
    return runsAs(pid, (args) => path.basename(args[0] ?? '').startsWith('qemu-system') && hasArgs(args, '-pidfile', pidfile)) ? pid : undefined;
  }

  async create(spec: VmSpec): Promise<VmInfo> {
    if (existsSync(this.file(spec.name, 'vm.json'))) throw new UsageError(`VM "${spec.name}" exists already`, `delete it first with \`lab image del ${spec.name}\`, or use another name`);
    mkdirSync(this.dir(spec.name), { recursive: true });
    await run('qemu-img', ['create', '-q', '-f', 'qcow2', this.file(spec.name, 'disk.qcow2'), `${spec.diskMiB}M`], { what: `creating the disk of ${spec.name}` });
    writeFileAtomicSync(this.file(spec.name, 'vm.json'), `${JSON.stringify(spec, null, 2)}\n`);
    return this.info(spec.name);
  }

  start(name: string, opts: StartOptions): Promise<void> {
    return this.launch(name, opts, []);
  }

  private async launch(name: string, opts: StartOptions, extra: string[]): Promise<void> {
    const spec = this.spec(name);
    if (this.pid(name)) throw new LabError(`VM "${name}" is running already`);
    const boot = effectiveBoot(spec, opts.boot);
    const accel = await accelerator(boot.kind === 'kernel' ? boot.kernel : boot.kind === 'pxe' ? kernelIn(boot.tftpRoot) : undefined);
    const args = [
      '-name', name,
      '-accel', accel,
      ...(accel === 'kvm' ? ['-cpu', 'host'] : []),
      '-m', String(spec.memoryMiB),
      '-smp', String(spec.cpus),
      '-display', 'none',
      '-daemonize',
      '-pidfile', this.file(name, 'qemu.pid'),
      '-qmp', `unix:${this.qmpSocket(name)},server=on,wait=off`,
      // A socket to type into (lab console) whose every byte also goes to console.log, attached or not.
      '-chardev', `socket,id=console,path=${this.consoleSocket(name)},server=on,wait=off,logfile=${this.file(name, 'console.log')},logappend=on`,
      '-serial', 'chardev:console',
      '-drive', `file=${this.file(name, 'disk.qcow2')},if=virtio,format=qcow2`,
      ...this.netArgs(spec, opts),
      '-device', `virtio-net-pci,netdev=n0,mac=${spec.mac}`,
      ...(opts.noReboot ? ['-no-reboot'] : []),
      ...(opts.cdrom ? ['-drive', `file=${opts.cdrom},media=cdrom,readonly=on`] : []),
    ];
    if (boot.kind === 'kernel') args.push('-kernel', boot.kernel, '-initrd', boot.initrd, '-append', boot.append);
    // The guest's secret reaches it as a fw_cfg file: a kernel line is readable by every user of this machine (ps).
    const secret = opts.boot.kind === 'disk' ? spec.diskBoot?.secret : undefined;
    const fwcfg = (entry: string, file: string, content: string) => {
      writeFileAtomicSync(this.file(name, file), content);
      args.push('-fw_cfg', `name=opt/lab/${entry},file=${this.file(name, file)}`);
    };
    if (secret) fwcfg('token', 'guest-token', secret);
    if (spec.hostKeys) fwcfg('host_keys', 'host-keys', spec.hostKeys);
    if (boot.kind === 'pxe') args.push('-boot', 'n');
    args.push(...extra);
    if (spec.network.mode === 'bridge') await this.ensureTap(spec.network.tap, spec.network.bridge);
    await run('qemu-system-x86_64', args, { what: `starting ${name}`, timeoutMs: 30_000 });
  }

  private netArgs(spec: VmSpec, opts: StartOptions): string[] {
    if (spec.network.mode === 'bridge') return ['-netdev', `tap,id=n0,ifname=${spec.network.tap},script=no,downscript=no`];
    let user = `user,id=n0,hostfwd=tcp:127.0.0.1:${spec.network.sshPort}-:22`;
    // QEMU's built-in TFTP, like VirtualBox NAT's: the DHCP reply names the boot file.
    if (opts.boot.kind === 'pxe') user += `,tftp=${opts.boot.tftpRoot},bootfile=${opts.boot.bootfile}`;
    return ['-netdev', user];
  }

  private async ensureTap(tap: string, bridge: string): Promise<void> {
    if (!existsSync(`/sys/class/net/${tap}`)) await run('ip', ['tuntap', 'add', 'dev', tap, 'mode', 'tap'], { what: `creating tap ${tap}` });
    await run('ip', ['link', 'set', tap, 'master', bridge, 'up'], { what: `attaching ${tap} to bridge ${bridge}` });
  }

  async stop(name: string, deadlineMs: number): Promise<'graceful' | 'forced' | 'already'> {
    this.spec(name);
    if (!this.pid(name)) return 'already';
    await qmp(this.qmpSocket(name), 'system_powerdown').catch(() => undefined);
    const gone = () => (this.pid(name) ? undefined : true);
    if (await waitUntil(deadlineMs, gone, { everyMs: 200 })) return 'graceful';
    await qmp(this.qmpSocket(name), 'quit').catch(() => undefined);
    const pid = this.pid(name);
    if (pid) process.kill(pid, 'SIGKILL');
    await waitUntil(5000, gone, { everyMs: 100 });
    return 'forced';
  }

  async delete(name: string): Promise<void> {
    const spec = this.spec(name);
    await this.stop(name, 0);
    if (spec.network.mode === 'bridge' && existsSync(`/sys/class/net/${spec.network.tap}`)) {
      await run('ip', ['link', 'del', spec.network.tap], { what: `removing tap ${spec.network.tap}` });
    }
    rmSync(this.qmpSocket(name), { force: true });
    rmSync(this.dir(name), { recursive: true, force: true });
  }

  /**
   * A linked clone: the source's disk becomes a read-only base that both the
   * source and the clone continue from, so neither sees the other's writes.
   */
  /** Clones of one source run one at a time: each moves the source's disk under a new base. */
  private readonly cloning = new KeyedQueue();

  clone(source: string, spec: VmSpec): Promise<VmInfo> {
    return this.cloning.run(source, () => this.cloneNow(source, spec));
  }

  private async cloneNow(source: string, spec: VmSpec): Promise<VmInfo> {
    this.spec(source);
    if (this.pid(source)) throw new LabError(`VM "${source}" is running; stop it before cloning`);
    if (existsSync(this.file(spec.name, 'vm.json'))) throw new UsageError(`VM "${spec.name}" exists already`, `delete it first with \`lab image del ${spec.name}\`, or use another name`);
    const base = this.file(source, `base-${Date.now()}.qcow2`);
    renameSync(this.file(source, 'disk.qcow2'), base);
    const overlay = (disk: string) => run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', disk], { what: `creating a disk on ${base}` });
    await overlay(this.file(source, 'disk.qcow2'));
    mkdirSync(this.dir(spec.name), { recursive: true });
    await overlay(this.file(spec.name, 'disk.qcow2'));
    writeFileAtomicSync(this.file(spec.name, 'vm.json'), `${JSON.stringify(spec, null, 2)}\n`);
    return this.info(spec.name);
  }

  async exportDisk(name: string, out: string): Promise<void> {
    await run('qemu-img', ['convert', '-O', 'raw', this.file(name, 'disk.qcow2'), out], { what: `reading the disk of ${name}`, timeoutMs: 600_000 });
  }

  readonly snapshots: VmSnapshots = {
    pause: async (name) => void (await qmp(this.qmpSocket(name), 'stop')),
    resume: async (name) => void (await qmp(this.qmpSocket(name), 'cont')),
    take: async (name, tag) => {
      if (this.pid(name)) {
        // savevm keeps a paused VM paused: the environment resumes together.
        await this.hmp(name, `savevm ${tag}`);
        return { memory: true };
      }
      await run('qemu-img', ['snapshot', '-c', tag, this.file(name, 'disk.qcow2')], { what: `capturing the disk of ${name}`, timeoutMs: 600_000 });
      return { memory: false };
    },
    restore: async (name, tag, memory) => {
      if (memory) {
        if (this.pid(name)) {
          await qmp(this.qmpSocket(name), 'stop');
          await this.hmp(name, `loadvm ${tag}`);
        } else {
          // The command line is the one the snapshot was taken under: a disk boot, as every host runs.
          await this.launch(name, { boot: { kind: 'disk' } }, ['-S', '-loadvm', tag]);
        }
        return;
      }
      await this.stop(name, 0);
      await run('qemu-img', ['snapshot', '-a', tag, this.file(name, 'disk.qcow2')], { what: `restoring the disk of ${name}`, timeoutMs: 600_000 });
    },
    remove: async (name, tag) => {
      if (!(await this.snapshots.list(name)).includes(tag)) return;
      if (this.pid(name)) await this.hmp(name, `delvm ${tag}`);
      else await run('qemu-img', ['snapshot', '-d', tag, this.file(name, 'disk.qcow2')], { what: `removing snapshot ${tag} of ${name}` });
    },
    list: async (name) => {
      this.spec(name);
      // -U: the disk of a running VM is locked by it; reading its snapshot table is safe.
      const out = await run('qemu-img', ['info', '-U', '--output=json', this.file(name, 'disk.qcow2')], { what: `reading the snapshots of ${name}` });
      const info = JSON.parse(out) as { snapshots?: { name: string }[] };
      return (info.snapshots ?? []).map((x) => x.name);
    },
  };

  /** A monitor command QMP has no plain form of (savevm, loadvm, delvm): HMP answers errors as text. */
  private async hmp(name: string, command: string): Promise<void> {
    const out = (await qmp(this.qmpSocket(name), 'human-monitor-command', { 'command-line': command }, 600_000)) as string;
    if (/error/i.test(out)) throw new LabError(`${name}: ${command}: ${out.trim().split('\n')[0]}`);
  }

  async info(name: string): Promise<VmInfo> {
    if (!existsSync(this.file(name, 'vm.json'))) return { name, state: 'missing', macs: [] };
    const spec = this.spec(name);
    let state: VmState = 'stopped';
    if (this.pid(name)) {
      const status = (await qmp(this.qmpSocket(name), 'query-status').catch(() => undefined)) as { status?: string } | undefined;
      state = !status ? 'unknown' : status.status === 'running' ? 'running' : status.status === 'paused' ? 'paused' : 'unknown';
    }
    return {
      name,
      state,
      macs: [spec.mac],
      sshForward: spec.network.mode === 'user' ? { address: '127.0.0.1', port: spec.network.sshPort } : undefined,
    };
  }

  async list(): Promise<VmInfo[]> {
    if (!existsSync(this.vmsDir)) return [];
    return Promise.all(readdirSync(this.vmsDir).filter((n) => existsSync(this.file(n, 'vm.json'))).sort().map((n) => this.info(n)));
  }

  async console(name: string): Promise<string> {
    const f = this.file(name, 'console.log');
    return existsSync(f) ? consoleText(readFileSync(f, 'utf8')) : '';
  }

  async consoleAttach(name: string): Promise<ConsoleAttach> {
    return { socket: this.consoleSocket(name) };
  }
}
