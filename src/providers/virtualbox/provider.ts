import { consoleText } from '../console.js';
import { appendFileSync, copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { writeFileAtomicSync } from '../../util/files.js';
import { homedir } from 'node:os';
import path from 'node:path';
import { LabError, UsageError } from '../../errors.js';
import type { ApplianceFacts, ConsoleAttach, Provider, StartOptions, VmInfo, VmSnapshots, VmSpec, VmState } from '../types.js';
import { VBoxDriver } from './driver.js';
import { macFromVBox, macToVBox } from './parse.js';
import { ensureAttachment, type Attachment, type LabNetwork } from './network.js';
import { requireSyslinux } from '../syslinux.js';
import { effectiveBoot } from '../boot.js';
import { waitUntil } from '../../util/wait.js';
import { KeyedQueue } from '../../util/queue.js';

const BASE_SNAPSHOT = 'lab-base';

/** The host's OS as VirtualBox's behaviour depends on it; LAB_VBOX_HOST_OS plays another (the stand-in's tests of macOS). */
export function hostOsOf(): NodeJS.Platform {
  return (process.env.LAB_VBOX_HOST_OS as NodeJS.Platform | undefined) ?? process.platform;
}

/**
 * The MAC of a bridged VM's NAT NIC (the one that PXE-boots): the lease's
 * with the locally administered bit set, so it is the VM's own and never
 * another lease's (those keep VirtualBox's 08:00:27 prefix).
 */
export function natMac(leaseMac: string): string {
  const b = leaseMac.split(':').map((x) => parseInt(x, 16));
  b[0] = (b[0]! | 0b10) & ~1;
  return b.map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/**
 * VirtualBox through VBoxManage. VirtualBox cannot boot a kernel directly, so
 * an installer's kernel line reaches the guest through the NAT adapter's
 * built-in TFTP: VirtualBox offers `<vmname>.pxe` from its TFTP folder, lab
 * puts pxelinux there under that name, with a pxelinux.cfg/01-<mac> that
 * boots the given kernel, initrd and kernel line.
 */
/** VirtualBox's own folder (VirtualBox.xml, its TFTP folder): $VBOX_USER_HOME when set, as VirtualBox itself reads it, else the platform's. */
export function vboxUserHome(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform, home = homedir()): string {
  if (env.VBOX_USER_HOME) return env.VBOX_USER_HOME;
  return platform === 'darwin' ? path.join(home, 'Library', 'VirtualBox') : path.join(home, '.config', 'VirtualBox');
}

export interface VirtualBoxOptions {
  /** The lab's name: VirtualBox's VM names are global to the user, so each lab's are prefixed with it and grouped under /<lab>. */
  lab: string;
  /** The lab network a bridged lab's VMs join (through a host-only network holding its gateway). */
  network?: LabNetwork;
  /** VirtualBox's NAT TFTP root: the TFTP folder beside VirtualBox.xml. */
  tftpRoot?: string;
  /** The host's OS, which decides how VirtualBox does host-only networking (Vagrant's way). */
  hostOs?: NodeJS.Platform;
  /** What lab made on the way (a host-only interface): said to the person. */
  say?: (line: string) => void;
}

export class VirtualBoxProvider implements Provider {
  readonly name = 'virtualbox';
  private readonly tftpRoot: string;
  private readonly hostOs: NodeJS.Platform;
  private attachment?: Promise<Attachment>;
  constructor(
    private readonly vmsDir: string,
    private readonly driver = new VBoxDriver(),
    private readonly opts: VirtualBoxOptions = { lab: 'lab' },
  ) {
    this.tftpRoot = opts.tftpRoot ?? path.join(vboxUserHome(), 'TFTP');
    this.hostOs = opts.hostOs ?? hostOsOf();
  }

  /** The VM's name in VirtualBox: the lab's name before lab's own. */
  private vboxName(name: string): string {
    return `${this.opts.lab}-${name}`;
  }
  private get group(): string {
    return `/${this.opts.lab}`;
  }

  /** The host-only network this lab's VMs join, found or made once per command. */
  private labAttachment(): Promise<Attachment> {
    const net = this.opts.network;
    if (!net) throw new LabError('a bridged VirtualBox lab needs its network (lab gateway and CIDR)');
    this.attachment ??= ensureAttachment(this.driver, net, this.hostOs).then(({ attachment, made }) => {
      if (made) (this.opts.say ?? ((l: string) => process.stderr.write(`${l}\n`)))(`virtualbox: made ${made}`);
      return attachment;
    });
    return this.attachment;
  }

  private dir(name: string): string {
    return path.join(this.vmsDir, name);
  }
  private spec(name: string): VmSpec {
    const f = path.join(this.dir(name), 'vm.json');
    if (!existsSync(f)) throw new UsageError(`no VM "${name}" (nothing at ${this.dir(name)})`, 'see `lab image list`, or `lab env status <env>`');
    return JSON.parse(readFileSync(f, 'utf8')) as VmSpec;
  }

  /** Settings shared by create and clone: NICs, MAC, console; per VirtualBox version. */
  private async nicSettings(spec: VmSpec): Promise<string[]> {
    const v7 = (await this.driver.getVersion()).major >= 7;
    const mac = macToVBox(spec.mac);
    const nat = (n: number) => [`--nic${n}`, 'nat', ...(v7 ? [`--nat-localhostreachable${n}`, 'on'] : [])];
    if (spec.network.mode === 'user') {
      return [...nat(1), '--macaddress1', mac, '--nicbootprio1', '1', '--natpf1', `ssh,tcp,127.0.0.1,${spec.network.sshPort},,22`];
    }
    // NIC 1 on the lab network (host-only), NIC 2 NAT for the installer's TFTP and the way out:
    // NIC 2 boots from the network (it alone has TFTP), with a MAC of its own derived from the lease's.
    const a = await this.labAttachment();
    const hostOnly = a.kind === 'hostonlynet' ? ['--nic1', 'hostonlynet', '--host-only-net1', a.network] : ['--nic1', 'hostonly', '--hostonlyadapter1', a.adapter];
    return [...hostOnly, '--macaddress1', mac, '--cableconnected1', 'on', ...nat(2), '--macaddress2', macToVBox(natMac(spec.mac)), '--nicbootprio1', '0', '--nicbootprio2', '1'];
  }

  /**
   * One truth about whether a VM exists: VirtualBox's. lab's folder of a VM
   * VirtualBox no longer knows (removed in its GUI) is a leftover, cleared
   * here; a VM VirtualBox knows under this lab's name that lab has no folder
   * for is a stray (see strays()).
   */
  private async mustBeFree(name: string): Promise<void> {
    if ((await this.info(name)).state !== 'missing') throw new UsageError(`VM "${name}" exists already`, `delete it first with \`lab image del ${name}\`, or use another name`);
    const known = await this.registered(name);
    if (known?.ours) throw new UsageError(`VirtualBox has a VM ${this.vboxName(name)} of this lab that lab has no record of`, `delete it with \`lab image del ${name} --force\``);
    if (known) {
      throw new UsageError(
        `VirtualBox has a VM ${this.vboxName(name)} of another lab named "${this.opts.lab}" (its files: ${known.cfg})`,
        'give this lab a name of its own (name in environments.ts)',
      );
    }
    rmSync(this.dir(name), { recursive: true, force: true });
  }

  /** The VM VirtualBox has under this name of lab's, and whether its files are this lab's (or another lab's of the same name). */
  private async registered(name: string): Promise<{ uuid: string; cfg: string; ours: boolean } | undefined> {
    const vm = (await this.driver.listVms()).find((v) => v.name === this.vboxName(name));
    return vm && { uuid: vm.uuid, ...(await this.filesOf(vm.uuid)) };
  }

  /** Where a VM's settings file is, and whether that is in this lab's folder. */
  private async filesOf(uuid: string): Promise<{ cfg: string; ours: boolean }> {
    const cfg = (await this.driver.info(uuid))?.get('CfgFile') ?? '';
    return { cfg, ours: path.resolve(cfg).startsWith(path.resolve(this.vmsDir) + path.sep) };
  }

  async strays(): Promise<string[]> {
    const prefix = `${this.opts.lab}-`;
    const strays: string[] = [];
    for (const vm of await this.driver.listVms()) {
      const name = vm.name.slice(prefix.length);
      if (vm.name.startsWith(prefix) && !existsSync(path.join(this.dir(name), 'vm.json')) && (await this.filesOf(vm.uuid)).ours) strays.push(name);
    }
    return strays.sort();
  }

  async create(spec: VmSpec): Promise<VmInfo> {
    await this.mustBeFree(spec.name);
    mkdirSync(this.dir(spec.name), { recursive: true });
    const v7 = (await this.driver.getVersion()).major >= 7;
    const uuid = await this.driver.createVm(this.vboxName(spec.name), 'Linux_64', this.vmsDir, this.group);
    try {
      await this.driver.modifyVm(uuid, [
        '--memory', String(spec.memoryMiB),
        '--cpus', String(spec.cpus),
        ...(spec.cpus > 1 ? ['--ioapic', 'on'] : []),
        '--boot1', 'disk', '--boot2', 'net', '--boot3', 'none', '--boot4', 'none',
        ...(v7 ? ['--audio-driver', 'none'] : ['--audio', 'none']),
        '--uart1', '0x3F8', '4', '--uartmode1', 'file', this.consoleFile(spec.name),
        ...(await this.nicSettings(spec)),
      ]);
      const disk = path.join(this.dir(spec.name), 'disk.vdi');
      await this.driver.createDisk(disk, spec.diskMiB);
      await this.driver.storageCtl(uuid, 'SATA', 'sata');
      await this.driver.storageAttach(uuid, 'SATA', 0, 0, 'hdd', disk);
    } catch (e) {
      await this.driver.unregisterVm(uuid).catch(() => undefined);
      throw e;
    }
    writeFileAtomicSync(path.join(this.dir(spec.name), 'vm.json'), `${JSON.stringify({ ...spec, uuid }, null, 2)}\n`);
    return this.info(spec.name);
  }

  private uuid(name: string): string {
    return (this.spec(name) as VmSpec & { uuid: string }).uuid;
  }

  /** The boot file VirtualBox's NAT DHCP offers a VM: <its VirtualBox name>.pxe in the TFTP folder. */
  private bootFile(spec: VmSpec): string {
    return path.join(this.tftpRoot, `${this.vboxName(spec.name)}.pxe`);
  }

  /** The pxelinux entry of a VM, keyed by the MAC of the NIC that boots from the network (the NAT one: NIC 2 on a bridged lab). */
  private pxeEntry(spec: VmSpec): string {
    const mac = spec.network.mode === 'bridge' ? natMac(spec.mac) : spec.mac;
    return path.join(this.tftpRoot, 'pxelinux.cfg', `01-${mac.replace(/:/g, '-')}`);
  }

  /** Lay out <name>.pxe, ldlinux.c32 and pxelinux.cfg/01-<mac> in VirtualBox's TFTP folder. */
  private pxeFor(spec: VmSpec, kernel: string, initrd: string, append: string, secret?: string): void {
    const SYSLINUX = requireSyslinux();
    const files = path.join(this.tftpRoot, 'lab', this.vboxName(spec.name));
    mkdirSync(files, { recursive: true });
    mkdirSync(path.join(this.tftpRoot, 'pxelinux.cfg'), { recursive: true });
    copyFileSync(SYSLINUX.pxelinux, this.bootFile(spec));
    copyFileSync(SYSLINUX.ldlinux, path.join(this.tftpRoot, 'ldlinux.c32'));
    copyFileSync(kernel, path.join(files, 'vmlinuz'));
    copyFileSync(initrd, path.join(files, 'initrd.img'));
    const rel = `lab/${this.vboxName(spec.name)}`;
    // The guest's secret goes on its kernel line here: a file in the user's own VirtualBox folder, not a command line.
    writeFileAtomicSync(
      this.pxeEntry(spec),
      `DEFAULT boot\nPROMPT 0\nLABEL boot\n  KERNEL ${rel}/vmlinuz\n  INITRD ${rel}/initrd.img\n  APPEND initrd=${rel}/initrd.img ${append}${secret ? ` lab.token=${secret}` : ''}\n`,
    );
  }

  /** The install called back: the VM's PXE entry boots what is installed from now on (its disk boot's kernel line, or the local disk). */
  async installed(name: string): Promise<void> {
    const spec = this.spec(name);
    if (!existsSync(this.pxeEntry(spec))) return;
    if (spec.diskBoot) this.pxeFor(spec, spec.diskBoot.kernel, spec.diskBoot.initrd, spec.diskBoot.append, spec.diskBoot.secret);
    else writeFileAtomicSync(this.pxeEntry(spec), 'DEFAULT local\nPROMPT 0\nLABEL local\n  LOCALBOOT 0\n');
  }

  async start(name: string, opts: StartOptions): Promise<void> {
    const spec = this.spec(name);
    const uuid = this.uuid(name);
    if ((await this.info(name)).state === 'running') throw new LabError(`VM "${name}" is running already`);
    // A saved VM (a restored snapshot, a savestate) is not mutable: it resumes where it was, whatever the boot asked.
    if ((await this.driver.info(uuid))?.get('VMState') === 'saved') {
      await this.driver.startVm(uuid);
      return;
    }
    const boot = effectiveBoot(spec, opts.boot);
    let order: string[];
    if (boot.kind === 'kernel') {
      this.pxeFor(spec, boot.kernel, boot.initrd, boot.append, opts.boot.kind === 'disk' ? spec.diskBoot?.secret : undefined);
      order = ['--boot1', 'net', '--boot2', 'disk'];
    } else if (boot.kind === 'pxe') {
      // VirtualBox serves only its own TFTP folder: the tree goes there, the boot file as <vm>.pxe.
      cpSync(boot.tftpRoot, this.tftpRoot, { recursive: true });
      copyFileSync(path.join(boot.tftpRoot, boot.bootfile), this.bootFile(spec));
      order = ['--boot1', 'net', '--boot2', 'disk'];
    } else {
      order = ['--boot1', 'disk', '--boot2', 'none'];
    }
    // Each power-on starts the console file anew (VirtualBox replaces it); an attach cut short by a stop may have left the UART on its socket.
    rmSync(this.earlierConsole(name), { force: true });
    await this.driver.modifyVm(uuid, [...order, '--uartmode1', 'file', this.consoleFile(name)]);
    if (opts.cdrom) {
      const info = await this.driver.info(uuid);
      const hasIde = [...(info?.entries() ?? [])].some(([k, v]) => k.startsWith('storagecontrollername') && v === 'IDE');
      if (!hasIde) await this.driver.storageCtl(uuid, 'IDE', 'ide');
      await this.driver.storageAttach(uuid, 'IDE', 0, 1, 'dvddrive', opts.cdrom);
    }
    await this.driver.startVm(uuid);
  }

  private async vmState(name: string): Promise<VmState> {
    const info = await this.driver.info(this.uuid(name));
    if (!info) return 'missing';
    const s = info.get('VMState');
    if (s === 'running') return 'running';
    if (s === 'paused') return 'paused';
    if (s === 'poweroff' || s === 'aborted' || s === 'saved') return 'stopped';
    return 'unknown'; // stopping, saving, stuck, gurumeditation
  }

  async stop(name: string, deadlineMs: number): Promise<'graceful' | 'forced' | 'already'> {
    const uuid = this.uuid(name);
    if ((await this.vmState(name)) !== 'running') return 'already';
    await this.driver.controlVm(uuid, 'acpipowerbutton');
    const stopped = async () => ((await this.vmState(name)) === 'stopped' ? true : undefined);
    if (await waitUntil(deadlineMs, stopped)) return 'graceful';
    await this.driver.controlVm(uuid, 'poweroff');
    // After a stop VirtualBox keeps the session a moment: wait until the VM is changeable.
    await waitUntil(30_000, stopped);
    return 'forced';
  }

  async delete(name: string): Promise<void> {
    if (!existsSync(path.join(this.dir(name), 'vm.json'))) {
      // A stray: VirtualBox knows it by this lab's name, its files in this lab's folder, lab has no record of it.
      const stray = await this.registered(name);
      if (!stray?.ours) throw new UsageError(`no VM "${name}"`, 'see `lab image list`');
      const state = (await this.driver.info(stray.uuid))?.get('VMState');
      if (state === 'running' || state === 'paused') await this.driver.controlVm(stray.uuid, 'poweroff');
      await waitUntil(30_000, async () => ((await this.driver.info(stray.uuid))?.get('VMState') === 'running' ? undefined : true));
      await this.driver.unregisterVm(stray.uuid);
      return;
    }
    const spec = this.spec(name);
    await this.stop(name, 0);
    if ((await this.driver.info(this.uuid(name))) !== undefined) await this.driver.unregisterVm(this.uuid(name));
    rmSync(this.bootFile(spec), { force: true });
    rmSync(this.pxeEntry(spec), { force: true });
    rmSync(path.join(this.tftpRoot, 'lab', this.vboxName(spec.name)), { recursive: true, force: true });
    rmSync(this.dir(name), { recursive: true, force: true });
  }

  /** Clones of one source run one at a time: the first takes the base snapshot the others clone from. */
  private readonly cloning = new KeyedQueue();

  /** A linked clone from the source's base snapshot (taken on the first clone). */
  clone(source: string, spec: VmSpec): Promise<VmInfo> {
    return this.cloning.run(source, () => this.cloneNow(source, spec));
  }

  private async cloneNow(source: string, spec: VmSpec): Promise<VmInfo> {
    const src = this.uuid(source);
    if ((await this.vmState(source)) === 'running') throw new LabError(`VM "${source}" is running; stop it before cloning`);
    await this.mustBeFree(spec.name);
    const info = await this.driver.info(src);
    const hasBase = [...(info?.entries() ?? [])].some(([k, v]) => k.startsWith('SnapshotName') && v === BASE_SNAPSHOT);
    if (!hasBase) await this.driver.takeSnapshot(src, BASE_SNAPSHOT);
    await this.driver.cloneVm(src, BASE_SNAPSHOT, this.vboxName(spec.name), this.vmsDir, this.group);
    const uuid = (await this.driver.listVms()).find((v) => v.name === this.vboxName(spec.name))?.uuid;
    if (!uuid) throw new LabError(`VBoxManage clonevm ${spec.name}: the clone is not registered`);
    try {
      // The clone inherits the source's SSH forward: its own replaces it.
      const inherited = (await this.info(source)).sshForward ? ['--natpf1', 'delete', 'ssh'] : [];
      await this.driver.modifyVm(uuid, ['--uartmode1', 'file', this.consoleFile(spec.name), ...inherited, ...(await this.nicSettings(spec))]);
      mkdirSync(this.dir(spec.name), { recursive: true });
      writeFileAtomicSync(path.join(this.dir(spec.name), 'vm.json'), `${JSON.stringify({ ...spec, uuid }, null, 2)}\n`);
    } catch (e) {
      // Registered and unregistered in step: a failed clone leaves no VM VirtualBox knows and lab does not.
      await this.driver.unregisterVm(uuid).catch(() => undefined);
      rmSync(this.dir(spec.name), { recursive: true, force: true });
      throw e;
    }
    return this.info(spec.name);
  }

  /** VirtualBox writes the OVA itself, disk and all, as its users' own exports are. */
  async exportAppliance(name: string, out: string, facts: ApplianceFacts): Promise<void> {
    await this.driver.exportAppliance(this.uuid(name), path.resolve(out), facts.name, facts.description);
  }

  /**
   * VirtualBox's own snapshots. One taken of a running (or paused) VM holds
   * its saved state; VirtualBox pauses a running VM while it writes it and
   * leaves a paused one paused. A restore needs the VM off, and leaves it
   * saved: startvm resumes it at the captured moment, with no boot.
   */
  readonly snapshots: VmSnapshots = {
    pause: async (name) => void (await this.driver.controlVm(this.uuid(name), 'pause')),
    resume: async (name) => {
      const state = (await this.driver.info(this.uuid(name)))?.get('VMState');
      if (state === 'paused') await this.driver.controlVm(this.uuid(name), 'resume');
      else if (state === 'saved') await this.driver.startVm(this.uuid(name));
    },
    take: async (name, tag) => {
      const state = await this.vmState(name);
      await this.driver.takeSnapshot(this.uuid(name), tag);
      return { memory: state === 'running' || state === 'paused' };
    },
    restore: async (name, tag) => {
      const uuid = this.uuid(name);
      const state = (await this.driver.info(uuid))?.get('VMState');
      if (state === 'running' || state === 'paused') {
        await this.driver.controlVm(uuid, 'poweroff');
        await waitUntil(30_000, async () => ((await this.vmState(name)) === 'stopped' ? true : undefined));
      }
      await this.driver.restoreSnapshot(uuid, tag);
    },
    remove: async (name, tag) => {
      if ((await this.snapshots.list(name)).includes(tag)) await this.driver.deleteSnapshot(this.uuid(name), tag);
    },
    list: async (name) => {
      const info = await this.driver.info(this.uuid(name));
      return [...(info?.entries() ?? [])].filter(([k]) => /^SnapshotName(-[\d-]+)?$/.test(k)).map(([, v]) => v);
    },
  };

  async info(name: string): Promise<VmInfo> {
    if (!existsSync(path.join(this.dir(name), 'vm.json'))) return { name, state: 'missing', macs: [] };
    const info = await this.driver.info(this.uuid(name));
    if (!info) return { name, state: 'missing', macs: [] };
    const macs = [...info.entries()].filter(([k, v]) => /^macaddress\d+$/.test(k) && /^[0-9A-Fa-f]{12}$/.test(v)).map(([, v]) => macFromVBox(v));
    const fwd = [...info.entries()].find(([k, v]) => /^Forwarding\(\d+\)$/.test(k) && v.startsWith('ssh,'))?.[1]?.split(',');
    return {
      name,
      state: await this.vmState(name),
      macs,
      sshForward: fwd ? { address: fwd[2] || '127.0.0.1', port: Number(fwd[3]) } : undefined,
    };
  }

  async list(): Promise<VmInfo[]> {
    const names = new Set((await this.driver.listVms()).map((v) => v.name));
    const mine = existsSync(this.vmsDir) ? readdirSync(this.vmsDir).filter((n) => names.has(this.vboxName(n))) : [];
    return Promise.all(mine.sort().map((n) => this.info(n)));
  }

  private consoleFile(name: string): string {
    return path.join(this.dir(name), 'console.log');
  }

  /** What this run's console showed before an attach: switching the UART back to its file replaces the file. */
  private earlierConsole(name: string): string {
    return path.join(this.dir(name), 'console.earlier.log');
  }

  async console(name: string): Promise<string> {
    const text = [this.earlierConsole(name), this.consoleFile(name)].map((f) => (existsSync(f) ? readFileSync(f, 'utf8') : '')).join('');
    return consoleText(text);
  }

  /**
   * VirtualBox's UART writes a file or serves a socket, not both: attaching
   * switches it to a socket (controlvm changeuartmode1 server), lab keeps the
   * file meanwhile with what it reads, and detaching switches it back.
   */
  async consoleAttach(name: string): Promise<ConsoleAttach> {
    const uuid = this.uuid(name);
    const file = this.consoleFile(name);
    const socket = path.join(this.dir(name), 'console.sock');
    await this.driver.changeUartMode(uuid, 'server', socket);
    const release = async () => {
      const earlier = this.earlierConsole(name);
      if (existsSync(file)) {
        appendFileSync(earlier, readFileSync(file));
        rmSync(file);
      }
      try {
        await this.driver.changeUartMode(uuid, 'file', file);
      } catch (e) {
        // Stopped while attached: nothing writes the file any more, so all of it goes back there.
        if ((await this.vmState(name)) === 'running') throw e;
        if (existsSync(earlier)) renameSync(earlier, file);
      }
    };
    if (!(await waitUntil(10_000, async () => existsSync(socket) || undefined))) {
      await release();
      throw new LabError(`${name}: VirtualBox made no console socket at ${socket}`);
    }
    return { socket, tee: file, release };
  }
}
