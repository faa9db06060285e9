import { setTimeout as sleep } from 'node:timers/promises';
import { loadExeca } from '../../util/exec.js';
import { EnvironmentError, LabError, ToolError } from '../../errors.js';
import { isTransient, parseCreatedIf, parseHostOnlyIfs, parseHostOnlyNets, parseMachineReadable, parseVersion, parseVmList, vboxError, type HostOnlyIf, type HostOnlyNet, type VBoxVersion } from './parse.js';

/**
 * A thin, typed wrapper around VBoxManage: one method per verb lab uses.
 * It alone knows command lines and output formats (Vagrant's driver split).
 */
export class VBoxDriver {
  private version?: VBoxVersion;
  constructor(
    private readonly bin = process.env.LAB_VBOXMANAGE ?? 'VBoxManage',
    private readonly retry = { tries: 5, delayMs: 1000 },
  ) {}

  /** Run one VBoxManage command: no shell, LANG=C, a hard timeout (a stuck VBoxSVC hangs it), transient errors retried. */
  async exec(args: string[], timeoutMs = 60_000): Promise<string> {
    for (let attempt = 1; ; attempt++) {
      if (process.env.LAB_DEBUG) process.stderr.write(`debug: ${this.bin} ${args.join(' ')}\n`);
      const execa = await loadExeca();
      const r = await execa(this.bin, args, { reject: false, timeout: timeoutMs, env: { LANG: 'C', LC_ALL: 'C' }, stdin: 'ignore' });
      if ((r as { code?: string }).code === 'ENOENT' || r.exitCode === 126 || r.exitCode === 127) {
        throw new EnvironmentError('VBoxManage is not installed', 'install VirtualBox, or use provider: qemu');
      }
      const stderr = String(r.stderr);
      if (/failed to open \/dev\/vboxnetctl/.test(stderr)) {
        throw new EnvironmentError('VirtualBox kernel modules are not loaded (/dev/vboxnetctl)', 'load them: modprobe vboxdrv vboxnetflt vboxnetadp');
      }
      if (r.timedOut) throw new ToolError(`VBoxManage ${args[0]}: no answer in ${timeoutMs / 1000} s (is VBoxSVC stuck?)`, 'VBoxManage', undefined, stderr);
      const said = vboxError(stderr);
      if (r.exitCode === 0 && !said) return String(r.stdout);
      const message = said ?? (stderr.trim() || `exit ${r.exitCode}`);
      if (isTransient(message) && attempt < this.retry.tries) {
        await sleep(this.retry.delayMs);
        continue;
      }
      throw new ToolError(`VBoxManage ${args.slice(0, 2).join(' ')} failed: ${message}`, 'VBoxManage', r.exitCode, stderr);
    }
  }

  async getVersion(): Promise<VBoxVersion> {
    if (!this.version) {
      const v = parseVersion(await this.exec(['--version']));
      if (!v) throw new LabError('VBoxManage --version printed no version');
      this.version = v;
    }
    return this.version;
  }

  async createVm(name: string, ostype: string, basefolder: string, group: string): Promise<string> {
    const out = await this.exec(['createvm', '--name', name, '--groups', group, '--ostype', ostype, '--basefolder', basefolder, '--register']);
    const m = /UUID: ([0-9a-f-]{36})/.exec(out);
    if (!m) throw new LabError(`VBoxManage createvm ${name}: no UUID in its output`);
    return m[1]!;
  }

  modifyVm(vm: string, settings: string[]): Promise<string> {
    return this.exec(['modifyvm', vm, ...settings]);
  }

  createDisk(file: string, sizeMiB: number): Promise<string> {
    return this.exec(['createmedium', 'disk', '--filename', file, '--size', String(sizeMiB), '--format', 'VDI', '--variant', 'Standard']);
  }

  storageCtl(vm: string, name: string, bus: 'sata' | 'ide'): Promise<string> {
    return this.exec(['storagectl', vm, '--name', name, '--add', bus, ...(bus === 'sata' ? ['--portcount', '2'] : [])]);
  }

  storageAttach(vm: string, ctl: string, port: number, device: number, type: 'hdd' | 'dvddrive', medium: string): Promise<string> {
    return this.exec(['storageattach', vm, '--storagectl', ctl, '--port', String(port), '--device', String(device), '--type', type, '--medium', medium]);
  }

  startVm(vm: string): Promise<string> {
    return this.exec(['startvm', vm, '--type', 'headless']);
  }

  controlVm(vm: string, action: 'acpipowerbutton' | 'poweroff' | 'pause' | 'resume'): Promise<string> {
    return this.exec(['controlvm', vm, action]);
  }

  /** Switch a running VM's UART 1: to a socket VirtualBox serves, or back to a file (which VirtualBox starts anew). */
  changeUartMode(vm: string, mode: 'server' | 'file', target: string): Promise<string> {
    return this.exec(['controlvm', vm, 'changeuartmode1', mode, target]);
  }

  unregisterVm(vm: string): Promise<string> {
    return this.exec(['unregistervm', vm, '--delete']);
  }

  takeSnapshot(vm: string, name: string): Promise<string> {
    return this.exec(['snapshot', vm, 'take', name]);
  }

  /** The VM must be powered off or saved; one taken running leaves it saved (startvm resumes it). */
  restoreSnapshot(vm: string, name: string): Promise<string> {
    return this.exec(['snapshot', vm, 'restore', name], 600_000);
  }

  deleteSnapshot(vm: string, name: string): Promise<string> {
    return this.exec(['snapshot', vm, 'delete', name], 600_000);
  }

  /** The machine as an OVA (OVF 1.0, with its manifest), named `vmname` inside. */
  exportAppliance(vm: string, out: string, vmname: string, description: string): Promise<string> {
    return this.exec(['export', vm, '--output', out, '--ovf10', '--manifest', '--vsys', '0', '--vmname', vmname, '--description', description], 3_600_000);
  }

  cloneVm(source: string, snapshot: string, name: string, basefolder: string, group: string): Promise<string> {
    return this.exec(['clonevm', source, '--snapshot', snapshot, '--options', 'link', '--name', name, '--groups', group, '--basefolder', basefolder, '--register']);
  }

  async info(vm: string): Promise<Map<string, string> | undefined> {
    try {
      return parseMachineReadable(await this.exec(['showvminfo', vm, '--machinereadable']));
    } catch (e) {
      if (e instanceof ToolError && /Could not find a registered machine/.test(e.stderr)) return undefined;
      throw e;
    }
  }

  async listVms(): Promise<{ name: string; uuid: string }[]> {
    return parseVmList(await this.exec(['list', 'vms']));
  }

  async listHostOnlyIfs(): Promise<HostOnlyIf[]> {
    return parseHostOnlyIfs(await this.exec(['list', 'hostonlyifs']));
  }

  /** A new host-only interface (vboxnetN): its name. */
  async createHostOnlyIf(): Promise<string> {
    const out = await this.exec(['hostonlyif', 'create']);
    const name = parseCreatedIf(out);
    if (!name) throw new LabError(`VBoxManage hostonlyif create: no interface name in its output: ${out.trim().split('\n').pop()}`);
    return name;
  }

  ipconfigHostOnlyIf(name: string, ip: string, netmask: string): Promise<string> {
    return this.exec(['hostonlyif', 'ipconfig', name, '--ip', ip, '--netmask', netmask]);
  }

  removeHostOnlyIf(name: string): Promise<string> {
    return this.exec(['hostonlyif', 'remove', name]);
  }

  async listHostOnlyNets(): Promise<HostOnlyNet[]> {
    return parseHostOnlyNets(await this.exec(['list', 'hostonlynets']));
  }

  addHostOnlyNet(name: string, netmask: string, lowerIp: string, upperIp: string): Promise<string> {
    return this.exec(['hostonlynet', 'add', '--name', name, '--netmask', netmask, '--lower-ip', lowerIp, '--upper-ip', upperIp, '--enable']);
  }
}
