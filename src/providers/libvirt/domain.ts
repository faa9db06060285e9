/**
 * A libvirt domain as lab describes it, and its XML. Every value passes
 * through one escape: names, paths and kernel lines come from the user's
 * environments.ts and kickstarts, and none is spliced into markup.
 */

export interface DomainDisk {
  /** A path on the hypervisor (a volume's vol-path). */
  path: string;
  format: 'qcow2' | 'raw';
  device: 'disk' | 'cdrom';
}

export interface Domain {
  name: string;
  uuid: string;
  /** kvm where the hypervisor offers it and the lab wants it; qemu is TCG. */
  type: 'kvm' | 'qemu';
  memoryMiB: number;
  cpus: number;
  /** Direct kernel boot (installers, and the mini guest's installed system); else the disk's bootloader. */
  kernel?: { kernel: string; initrd: string; cmdline: string };
  /** An installer's final reboot ends its run: the domain stops instead. */
  onReboot: 'restart' | 'destroy';
  disks: DomainDisk[];
  nic: { bridge: string; mac: string };
  /** Where the serial console is written on the hypervisor (a file in lab's pool, read back as a volume). */
  console: string;
  /**
   * QEMU fw_cfg entries, by name, each a file on the hypervisor: the guest's
   * secrets (its callback token, its host keys). Never their values inline:
   * libvirt puts those on QEMU's command line, which the hypervisor's users
   * can read.
   */
  fwcfg?: Record<string, string>;
  /** Which lab made it: strays are found by it. */
  lab: string;
}

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };
export function xmlEscape(v: string | number): string {
  // Control characters are not allowed in XML 1.0 at all: refused rather than dropped silently.
  const s = String(v);
  if (/[\x00-\x08\x0b\x0c\x0e-\x1f]/.test(s)) throw new Error(`a domain value holds a control character: ${JSON.stringify(s)}`);
  return s.replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}

/** Tagged template: every interpolated value escaped. */
function xml(parts: TemplateStringsArray, ...values: (string | number)[]): string {
  return parts.reduce((out, p, i) => out + p + (i < values.length ? xmlEscape(values[i]!) : ''), '');
}

export const LAB_NS = 'https://lab.invalid/libvirt/1';

export function domainXml(d: Domain): string {
  const devs = ['vda', 'vdb', 'vdc', 'vdd'];
  const hd = ['hda', 'hdb', 'hdc', 'hdd'];
  let v = 0;
  let h = 0;
  const disks = d.disks.map((k) =>
    k.device === 'cdrom'
      ? xml`    <disk type='file' device='cdrom'><driver name='qemu' type='raw'/><source file='${k.path}'/><target dev='${hd[h++]!}' bus='ide'/><readonly/></disk>`
      : xml`    <disk type='file' device='disk'><driver name='qemu' type='${k.format}'/><source file='${k.path}'/><target dev='${devs[v++]!}' bus='virtio'/></disk>`,
  );
  const boot = d.kernel
    ? [xml`    <kernel>${d.kernel.kernel}</kernel>`, xml`    <initrd>${d.kernel.initrd}</initrd>`, xml`    <cmdline>${d.kernel.cmdline}</cmdline>`]
    : ["    <boot dev='hd'/>", "    <boot dev='cdrom'/>"];
  const fwcfg = Object.entries(d.fwcfg ?? {});
  return [
    xml`<domain type='${d.type}'>`,
    xml`  <name>${d.name}</name>`,
    xml`  <uuid>${d.uuid}</uuid>`,
    xml`  <metadata><lab:vm xmlns:lab='${LAB_NS}' lab='${d.lab}'/></metadata>`,
    xml`  <memory unit='MiB'>${d.memoryMiB}</memory>`,
    xml`  <vcpu>${d.cpus}</vcpu>`,
    ...(fwcfg.length ? ["  <sysinfo type='fwcfg'>", ...fwcfg.map(([k, file]) => xml`    <entry name='${k}' file='${file}'/>`), '  </sysinfo>'] : []),
    '  <os>',
    "    <type arch='x86_64' machine='pc'>hvm</type>",
    ...boot,
    '  </os>',
    '  <features><acpi/><apic/></features>',
    '  <on_poweroff>destroy</on_poweroff>',
    xml`  <on_reboot>${d.onReboot}</on_reboot>`,
    '  <on_crash>destroy</on_crash>',
    '  <devices>',
    ...disks,
    xml`    <interface type='bridge'><source bridge='${d.nic.bridge}'/><mac address='${d.nic.mac}'/><model type='virtio'/></interface>`,
    // A pty virsh console attaches to, its every byte logged to the file by virtlogd, attached or not.
    xml`    <serial type='pty'><log file='${d.console}' append='on'/><target port='0'/></serial>`,
    "    <video><model type='none'/></video>",
    "    <memballoon model='none'/>",
    '  </devices>',
    '</domain>',
    '',
  ].join('\n');
}
