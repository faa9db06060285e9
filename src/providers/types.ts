import type { Lab } from '../config/load.js';
import type { Check } from '../doctor/types.js';

/**
 * The provider interface: what lab asks of a hypervisor. One folder per
 * provider under src/providers/ implements it; nothing above knows command
 * lines or output formats.
 */

/** unreachable: the VM's hypervisor does not answer (provider libvirt); its VM may be gone with it. */
export type VmState = 'running' | 'stopped' | 'paused' | 'missing' | 'unknown' | 'unreachable';

/** How a VM boots this time. */
export type BootSource =
  | { kind: 'disk' }
  /** Direct kernel boot: the installer's kernel and initrd with a kernel line (inst.ks=...). */
  | { kind: 'kernel'; kernel: string; initrd: string; append: string }
  /** Network boot through the hypervisor's built-in TFTP (QEMU user net, VirtualBox NAT). */
  | { kind: 'pxe'; tftpRoot: string; bootfile: string };

export type VmNetwork =
  /** Rootless NAT; SSH reaches the guest through a forwarded loopback port. */
  | { mode: 'user'; sshPort: number }
  /** A tap on the lab bridge: the guest has a real address and answers ping. */
  | { mode: 'bridge'; bridge: string; tap: string };

export interface VmSpec {
  name: string;
  cpus: number;
  memoryMiB: number;
  diskMiB: number;
  mac: string;
  network: VmNetwork;
  /** Where a provider with several hypervisors puts it (libvirt): a named one, or by policy. */
  placement?: { hypervisor?: string; policy: 'spread' | 'pack'; group?: string };
  /**
   * How the installed system boots when it has no bootloader of its own (the
   * mini guest: its kernel and initrd, which then read the disk).
   */
  diskBoot?: {
    kernel: string;
    initrd: string;
    append: string;
    /**
     * The host's callback token, for the guest only: passed where other users
     * of this machine cannot read it (not on a command line), e.g. QEMU's
     * fw_cfg from a private file.
     */
    secret?: string;
  };
  /**
   * The host's SSH host keys, made by lab (makeHostKeys) for a guest that
   * takes them (the mini guest): private, so passed as the secret is, where
   * the provider can (QEMU's fw_cfg). Elsewhere the guest makes its own.
   */
  hostKeys?: string;
}

export interface VmInfo {
  name: string;
  state: VmState;
  macs: string[];
  /** Where SSH reaches the guest from this machine, with user networking. */
  sshForward?: { address: string; port: number };
  /** The hypervisor it runs on, where there can be several (libvirt). */
  hypervisor?: string;
}

export interface StartOptions {
  boot: BootSource;
  /** Power off instead of rebooting (an installer's final reboot ends the install). */
  noReboot?: boolean;
  /** An installer ISO to attach as a CD-ROM (anaconda's inst.repo=cdrom). */
  cdrom?: string;
}

/** A hypervisor lab knows: how to reach it, and what it needs of this machine. One per folder, named in src/providers/index.ts. */
export interface ProviderKind {
  readonly name: string;
  /** The locally administered MAC prefix its guests' NICs get (QEMU 52:54:00, VirtualBox 08:00:27). */
  readonly macPrefix: readonly [number, number, number];
  /** Where a guest on user networking (NAT) reaches this machine. */
  readonly userNetHost: string;
  /**
   * It places VMs on the hypervisors environments.ts declares (libvirt): the
   * lab takes `hypervisors` and groups `hypervisor`/`placement`, and guests
   * join each hypervisor's bridge (network.mode 'bridge').
   */
  readonly hypervisors?: boolean;
  /** Its implementation is imported here, not with the registry: a command pays only for the lab's own provider. */
  create(lab: Lab): Promise<Provider>;
  /** What `lab doctor` checks for it: its tools, and what its network mode needs (kernel: a built guest kernel to try, if any). */
  doctor(lab: Lab, probe: { kernel?: string }): Promise<Check[]>;
  /**
   * Make what the lab network needs on this machine before a server listens
   * on its gateway, when the provider is the one that makes it (VirtualBox's
   * host-only interface); found, not made again, when it exists. say: what was made.
   */
  prepareNetwork?(lab: Lab, say: (line: string) => void): Promise<void>;
  /**
   * Addresses on the lab network that its own machines hold (libvirt: the
   * hypervisors its URIs name by address), with who holds each: never leased to a host.
   */
  reservedAddresses?(lab: Lab): { address: string; holder: string }[];
  /** What `lab init --provider` changes in the scaffold's environments.ts for it. */
  scaffold?(source: string): string;
}

/**
 * A serial console to attach to: a Unix socket carrying its bytes (QEMU's
 * chardev; VirtualBox's UART switched to server mode, which then writes no
 * file, so lab appends what it reads to `tee` and calls `release` once
 * detached), or a program that attaches the terminal itself (virsh console).
 */
export type ConsoleAttach = { socket: string; tee?: string; release?: () => Promise<void> } | { command: string[]; detachKey: string };

export interface Provider {
  readonly name: string;
  create(spec: VmSpec): Promise<VmInfo>;
  start(name: string, opts: StartOptions): Promise<void>;
  /** Graceful ACPI power-off, then a hard power-off when deadlineMs passes. Resolves once stopped. */
  stop(name: string, deadlineMs: number): Promise<'graceful' | 'forced' | 'already'>;
  delete(name: string): Promise<void>;
  /** A linked clone where the provider can (a disk backed by the source's). */
  clone(source: string, spec: VmSpec): Promise<VmInfo>;
  info(name: string): Promise<VmInfo>;
  list(): Promise<VmInfo[]>;
  /** The guest's serial console output so far, terminal escapes removed ('' before there is any): a failed build's report, `lab console`, `--follow`. */
  console(name: string): Promise<string>;
  /** How to type into a running VM's serial console (`lab console <vm>`): a socket lab connects to, or a program that attaches itself. */
  consoleAttach?(name: string): Promise<ConsoleAttach>;
  /**
   * The install called back: its next boots must not start the installer
   * again (Cobbler's netboot flag). For a provider that installs through a
   * network boot with net first (VirtualBox), where an installer's reboot
   * would otherwise install again; QEMU's -no-reboot needs nothing.
   */
  installed?(name: string): Promise<void>;
  /**
   * VMs of this lab the hypervisor knows and lab does not (a crash between
   * registering and recording, a folder removed by hand), by lab's name:
   * `lab image list` shows them, `lab image del` removes them.
   */
  strays?(): Promise<string[]>;
  /**
   * Work owed to hypervisors that answer again (libvirt: VMs replaced
   * elsewhere while theirs was away are removed there). The monitor calls it
   * every cycle; what it did, one line each.
   */
  reconcile?(): Promise<string[]>;
  /**
   * Move a running VM to another of the provider's hypervisors, live (libvirt);
   * the hypervisor it is on now. Throws where that cannot be done.
   */
  migrate?(name: string): Promise<string>;
  /** Nothing of the provider outlives the command (its virsh shells). */
  close?(): void;
  /**
   * The stopped VM's whole disk, written as a raw image to `out`, backing
   * files folded in (`lab image export`). Absent where lab cannot read a
   * VM's disk yet.
   */
  exportDisk?(name: string, out: string): Promise<void>;
  /**
   * The stopped VM as an OVA at `out`, written by the hypervisor's own
   * export (`VBoxManage export`). Absent where lab packs the OVA itself
   * from exportDisk's disk.
   */
  exportAppliance?(name: string, out: string, facts: ApplianceFacts): Promise<void>;
  /** Named states of a VM, for environment snapshots (`lab env snapshot`). Absent where lab cannot take them yet. */
  snapshots?: VmSnapshots;
}

/** What an exported appliance says of itself. */
export interface ApplianceFacts {
  name: string;
  cpus: number;
  memoryMiB: number;
  description: string;
}

/**
 * A VM's state kept under a tag, so that a whole environment can be captured
 * at one moment: every running VM is paused first, then each is captured,
 * then all resume; a restore loads each paused, then resumes them together.
 */
export interface VmSnapshots {
  /** Hold a running VM's CPUs still (its clock with them). */
  pause(name: string): Promise<void>;
  /** Let a paused VM run on. */
  resume(name: string): Promise<void>;
  /** Capture the VM under tag: memory and devices with its disk when it runs or is paused (it stays paused), its disk alone when stopped. */
  take(name: string, tag: string): Promise<{ memory: boolean }>;
  /** Bring the VM back to tag: paused at the captured moment where the tag holds memory, else stopped with the captured disk. */
  restore(name: string, tag: string, memory: boolean): Promise<void>;
  /** Forget tag (a tag the VM does not hold is no error). */
  remove(name: string, tag: string): Promise<void>;
  /** The tags the VM holds. */
  list(name: string): Promise<string[]>;
}
