import { existsSync, mkdtempSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Lab } from '../config/load.js';
import type { Inventory } from '../inventory/store.js';
import type { ApplianceFacts, Provider } from '../providers/types.js';
import { EnvironmentError, UsageError } from '../errors.js';
import { imageDistro } from '../distros/index.js';
import { run } from '../util/exec.js';
import { bootFiles } from './build.js';
import { writeOva } from './ova.js';

/**
 * `lab image export`: a built image as a disk others can use. The image
 * VM's disk, backing files folded in, made bootable where its install left
 * no bootloader (the distro's makeBootable), then converted: a qcow2 for
 * libvirt, OpenStack or Proxmox, a VMDK, an OVA (VirtualBox, VMware), raw,
 * or a Vagrant box (libvirt). A provider with an export of its own
 * (VirtualBox's `VBoxManage export`) writes the OVA itself.
 */
export const EXPORT_FORMATS = ['qcow2', 'vmdk', 'ova', 'raw', 'box'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export interface Exported {
  file: string;
  format: ExportFormat;
  bytes: number;
}

export function parseExportFormat(raw: string): ExportFormat {
  const f = EXPORT_FORMATS.find((x) => x === raw);
  if (!f) throw new UsageError(`--format: no format "${raw}"; formats: ${EXPORT_FORMATS.join(', ')}`);
  return f;
}

export async function exportImage(lab: Lab, inventory: Inventory, provider: Provider, image: string, format: ExportFormat, out: string): Promise<Exported> {
  if (!lab.config.images[image]) throw new UsageError(`no image "${image}" in environments.ts; images: ${Object.keys(lab.config.images).join(', ')}`);
  if ((await inventory.read()).images[image]?.state !== 'installed') throw new UsageError(`image ${image} is not built`, `build it first: \`lab image build ${image}\``);
  const vm = await provider.info(image);
  if (vm.state === 'missing') throw new UsageError(`image ${image} is recorded as built but its VM is gone`, `build it again: \`lab image build ${image} --rebuild\``);
  if (vm.state !== 'stopped') throw new UsageError(`the VM of image ${image} is ${vm.state}: a disk is exported from a stopped VM`, `stop it first: \`lab image stop ${image}\``);
  if (!existsSync(path.dirname(path.resolve(out)))) throw new UsageError(`--out: no folder ${path.dirname(path.resolve(out))}`);
  if (format === 'ova' && provider.exportAppliance) {
    // VirtualBox will not write over a file, and names the files inside after the OVA's: it writes one of
    // out's name in a folder beside, which then replaces out whole.
    const dir = mkdtempSync(path.join(path.dirname(path.resolve(out)), '.lab-ova-'));
    try {
      const part = path.join(dir, path.basename(out));
      await provider.exportAppliance(image, part, applianceFacts(lab, image));
      renameSync(part, out);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    return { file: out, format, bytes: statSync(out).size };
  }
  if (!provider.exportDisk) throw new EnvironmentError(`provider ${lab.config.provider} cannot export a VM's disk yet`);
  const raw = `${out}.raw-${process.pid}`;
  try {
    await provider.exportDisk(image, raw);
    const distro = imageDistro(lab, image);
    if (distro.makeBootable) await distro.makeBootable(raw, await bootFiles(lab, image, () => undefined));
    if (format === 'raw') renameSync(raw, out);
    else if (format === 'box') await writeBox(lab, image, raw, out);
    else if (format === 'ova') await writeOva(raw, out, applianceFacts(lab, image));
    else await run('qemu-img', ['convert', '-O', format, raw, out], { what: `writing ${out} (${format})`, timeoutMs: 600_000 });
  } finally {
    rmSync(raw, { force: true });
  }
  return { file: out, format, bytes: statSync(out).size };
}

function applianceFacts(lab: Lab, image: string): ApplianceFacts {
  const spec = lab.config.images[image]!;
  return { name: image, cpus: spec.cpus, memoryMiB: spec.memory, description: `Image ${image} of ${lab.paths.dir}, exported by lab` };
}

/**
 * A Vagrant box for vagrant-libvirt: box.img (the qcow2), metadata.json and a
 * Vagrantfile saying how Vagrant reaches the guest: as root with the lab's
 * key (the one the image trusts; its path on this machine), through sh,
 * without sudo (busybox has none), no synced folder (no NFS or rsync on it).
 */
async function writeBox(lab: Lab, image: string, raw: string, out: string): Promise<void> {
  const dir = mkdtempSync(path.join(path.dirname(path.resolve(out)), '.lab-box-'));
  try {
    await run('qemu-img', ['convert', '-O', 'qcow2', raw, path.join(dir, 'box.img')], { what: 'writing the box\'s disk', timeoutMs: 600_000 });
    const spec = lab.config.images[image]!;
    writeFileSync(path.join(dir, 'metadata.json'), `${JSON.stringify({ provider: 'libvirt', format: 'qcow2', virtual_size: Math.max(1, Math.ceil(spec.disk / 1024)) })}\n`);
    const ruby = (s: string) => JSON.stringify(s);
    writeFileSync(
      path.join(dir, 'Vagrantfile'),
      [
        `# Made by lab image export from image ${image} of ${lab.paths.dir}.`,
        'Vagrant.configure("2") do |config|',
        '  config.ssh.username = "root"',
        `  config.ssh.private_key_path = ${ruby(lab.paths.sshKey)}`,
        '  config.ssh.insert_key = false',
        '  config.ssh.shell = "sh"',
        '  config.ssh.sudo_command = "%c"',
        '  config.vm.allow_fstab_modification = false',
        '  config.vm.synced_folder ".", "/vagrant", disabled: true',
        '  config.vm.provider :libvirt do |lv|',
        `    lv.cpus = ${spec.cpus}`,
        `    lv.memory = ${spec.memory}`,
        '    lv.graphics_type = "none"',
        '  end',
        'end',
        '',
      ].join('\n'),
    );
    await run('tar', ['-C', dir, '-czf', out, 'box.img', 'metadata.json', 'Vagrantfile'], { what: `writing ${out}`, timeoutMs: 600_000 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
