import { createHash } from 'node:crypto';
import { createReadStream, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ApplianceFacts } from '../providers/types.js';
import { run } from '../util/exec.js';

/**
 * An OVA as DSP0243 (OVF 1.x) packs one, for VirtualBox, VMware and others
 * to import: the descriptor first, then the manifest, then the disk, in a
 * ustar archive; the disk a streamOptimized VMDK (the only VMDK kind an OVF
 * consumer must read); the manifest SHA-1, the one digest OVF 1.x names.
 * The hardware is what the image was built with, on the controller and NIC
 * VirtualBox gives a Linux_64 VM (AHCI, E1000 on NAT), as its own export
 * writes them, so an import there changes nothing.
 */
export interface OvfFacts extends ApplianceFacts {
  /** The disk's virtual size, bytes. */
  capacity: number;
  diskFile: string;
  /** The VMDK's size in the package, bytes. */
  diskBytes: number;
}

const NS = {
  ovf: 'http://schemas.dmtf.org/ovf/envelope/1',
  rasd: 'http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData',
  vssd: 'http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData',
  vbox: 'http://www.virtualbox.org/ovf/machine',
};

const xml = (s: string | number) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** One RASD item; its elements in the order of the CIM schema's sequence (alphabetical), which validating readers enforce. */
function item(fields: Record<string, string | number>): string {
  const lines = Object.keys(fields)
    .sort()
    .map((k) => `        <rasd:${k}>${xml(fields[k]!)}</rasd:${k}>`);
  return ['      <Item>', ...lines, '      </Item>'].join('\n');
}

export function ovfDescriptor(f: OvfFacts): string {
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<Envelope ovf:version="1.0" xml:lang="en-US" xmlns="${NS.ovf}" xmlns:ovf="${NS.ovf}" xmlns:rasd="${NS.rasd}" xmlns:vssd="${NS.vssd}" xmlns:vbox="${NS.vbox}">`,
    '  <References>',
    `    <File ovf:href="${xml(f.diskFile)}" ovf:id="file1" ovf:size="${f.diskBytes}"/>`,
    '  </References>',
    '  <DiskSection>',
    '    <Info>List of the virtual disks used in the package</Info>',
    `    <Disk ovf:capacity="${f.capacity}" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>`,
    '  </DiskSection>',
    '  <NetworkSection>',
    '    <Info>Logical networks used in the package</Info>',
    '    <Network ovf:name="NAT">',
    '      <Description>Logical network used by this appliance.</Description>',
    '    </Network>',
    '  </NetworkSection>',
    `  <VirtualSystem ovf:id="${xml(f.name)}">`,
    '    <Info>A virtual machine</Info>',
    '    <AnnotationSection>',
    '      <Info>A human-readable annotation</Info>',
    `      <Annotation>${xml(f.description)}</Annotation>`,
    '    </AnnotationSection>',
    // CIM_OperatingSystem.OsType 103: "Linux 64-Bit", which VirtualBox maps to its Linux_64, the type lab creates its VMs with.
    '    <OperatingSystemSection ovf:id="103">',
    '      <Info>The kind of installed guest operating system</Info>',
    '      <Description>Linux_64</Description>',
    '      <vbox:OSType ovf:required="false">Linux_64</vbox:OSType>',
    '    </OperatingSystemSection>',
    '    <VirtualHardwareSection>',
    '      <Info>Virtual hardware requirements for a virtual machine</Info>',
    '      <System>',
    '        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>',
    '        <vssd:InstanceID>0</vssd:InstanceID>',
    `        <vssd:VirtualSystemIdentifier>${xml(f.name)}</vssd:VirtualSystemIdentifier>`,
    '        <vssd:VirtualSystemType>virtualbox-2.2</vssd:VirtualSystemType>',
    '      </System>',
    item({ Caption: `${f.cpus} virtual CPU`, Description: 'Number of virtual CPUs', ElementName: `${f.cpus} virtual CPU`, InstanceID: 1, ResourceType: 3, VirtualQuantity: f.cpus }),
    item({ AllocationUnits: 'MegaBytes', Caption: `${f.memoryMiB} MB of memory`, Description: 'Memory Size', ElementName: `${f.memoryMiB} MB of memory`, InstanceID: 2, ResourceType: 4, VirtualQuantity: f.memoryMiB }),
    item({ Address: 0, Caption: 'sataController0', Description: 'SATA Controller', ElementName: 'sataController0', InstanceID: 3, ResourceSubType: 'AHCI', ResourceType: 20 }),
    item({ AddressOnParent: 0, Caption: 'disk1', Description: 'Disk Image', ElementName: 'disk1', HostResource: 'ovf:/disk/vmdisk1', InstanceID: 4, Parent: 3, ResourceType: 17 }),
    item({ AutomaticAllocation: 'true', Caption: "Ethernet adapter on 'NAT'", Connection: 'NAT', ElementName: "Ethernet adapter on 'NAT'", InstanceID: 5, ResourceSubType: 'E1000', ResourceType: 10 }),
    '    </VirtualHardwareSection>',
    '  </VirtualSystem>',
    '</Envelope>',
    '',
  ].join('\n');
}

async function sha1(file: string): Promise<string> {
  const h = createHash('sha1');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** The OVA of a raw disk at `out`. */
export async function writeOva(raw: string, out: string, facts: ApplianceFacts): Promise<void> {
  const dir = mkdtempSync(path.join(path.dirname(path.resolve(out)), '.lab-ova-'));
  try {
    const names = { ovf: `${facts.name}.ovf`, mf: `${facts.name}.mf`, disk: `${facts.name}-disk1.vmdk` };
    await run('qemu-img', ['convert', '-O', 'vmdk', '-o', 'subformat=streamOptimized', raw, path.join(dir, names.disk)], { what: 'writing the OVA\'s disk', timeoutMs: 600_000 });
    const descriptor = ovfDescriptor({ ...facts, capacity: statSync(raw).size, diskFile: names.disk, diskBytes: statSync(path.join(dir, names.disk)).size });
    writeFileSync(path.join(dir, names.ovf), descriptor);
    const digests = [`SHA1(${names.ovf})= ${await sha1(path.join(dir, names.ovf))}`, `SHA1(${names.disk})= ${await sha1(path.join(dir, names.disk))}`];
    writeFileSync(path.join(dir, names.mf), `${digests.join('\n')}\n`);
    await run('tar', ['--format=ustar', '--numeric-owner', '--owner=0', '--group=0', '-C', dir, '-cf', out, names.ovf, names.mf, names.disk], { what: `writing ${out}`, timeoutMs: 600_000 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
