import type { Finding, ParsedKickstart } from './lint.js';

/**
 * What differs by distro, behind one interface. Each distro is a folder
 * under src/distros/ exporting one of these, named in the registry
 * (src/distros/index.ts); nothing outside those folders asks which distro
 * it has.
 */

/** An installer's kernel and initrd on this machine. */
export interface BootFiles {
  kernel: string;
  initrd: string;
}

/** What the installer needs on its kernel line, and where PXE finds its kernel and initrd (relative to the TFTP root). */
export interface BootSpec {
  kernel: string;
  initrd: string;
  args: string;
}

/** The image as a distro sees it: its name and the fields of environments.ts it uses. */
export interface ImageFacts {
  name: string;
  iso?: string;
}

export interface DistroKind {
  readonly name: string;
  /** One line for people (lab doctor, errors). */
  readonly description: string;
  /** Its images need an installer ISO (images.<name>.iso). */
  readonly needsIso: boolean;
  /**
   * clones: an environment's hosts are linked clones of the built image,
   * each taking its own name and host key at its first boot. installs: each
   * host installs from the installer as itself.
   */
  readonly hostsAre: 'clones' | 'installs';
  /** The installer's kernel and initrd: built, or taken from the ISO (labDir resolves the image's paths). */
  bootFiles(labDir: string, image: ImageFacts, log: (line: string) => void): Promise<BootFiles>;
  /** The installer's kernel line for a kickstart at ksUrl. */
  bootSpec(image: string, ksUrl: string): BootSpec;
  /**
   * How an installed system without a bootloader of its own boots: its
   * kernel line (the files are the installer's). undefined: it has one.
   * `ip` is the kernel's ip= argument of a static lease, or ''.
   */
  diskBootArgs?(host: string, ip: string): string;
  /**
   * What a rendered kickstart lacks for an unattended install of this distro,
   * or has that it must not. target: the installer release to check against
   * (pykickstart's -v), one of lintTargets; the first when not given.
   */
  lint(k: ParsedKickstart, target?: string): Finding[];
  /**
   * Make an installed disk (a raw image) boot by itself, where its install
   * leaves no bootloader (the mini guest's kernel boots its disk from
   * outside): what `lab image export` does before it converts.
   */
  makeBootable?(raw: string, boot: BootFiles): Promise<void>;
  readonly lintTargets?: readonly string[];
  /** Its guest takes the SSH host keys lab makes for it (VmSpec.hostKeys) instead of making them itself. */
  readonly takesHostKeys?: boolean;
}
