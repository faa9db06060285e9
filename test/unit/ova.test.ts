import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { writeOva } from '../../src/hostbuilder/ova.js';
import { repo } from '../helpers.js';

const check = (ova: string) => spawnSync('python3', [path.join(repo, 'test', 'fixtures', 'ovf', 'check.py'), ova], { encoding: 'utf8' });
const tar = (args: string[]) => assert.equal(spawnSync('tar', args).status, 0);

test('an OVA as OVF 1.x consumers read one: the checker takes lab\'s, and refuses a wrong digest, a package out of order and an item out of the schema\'s order', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'lab-ova-'));
  try {
    const raw = path.join(dir, 'disk.raw');
    writeFileSync(raw, Buffer.alloc(4 << 20, 7));
    const ova = path.join(dir, 'mini.ova');
    await writeOva(raw, ova, { name: 'mini', cpus: 2, memoryMiB: 256, description: 'a <test> & more' });
    const ok = check(ova);
    assert.equal(ok.status, 0, ok.stderr);
    const facts = JSON.parse(ok.stdout) as Record<string, unknown>;
    assert.deepEqual(facts, {
      files: ['mini.ovf', 'mini.mf', 'mini-disk1.vmdk'],
      name: 'mini',
      cpus: 2,
      memory: '256 MegaBytes',
      disks: [{ file: 'mini-disk1.vmdk', capacity: 4 << 20 }],
      networks: ['NAT'],
      manifest: ['mini-disk1.vmdk', 'mini.ovf'],
    });
    assert.equal(readdirSync(dir).filter((f) => f.startsWith('.lab-ova-')).length, 0, 'its work folder is gone');

    const x = path.join(dir, 'x');
    mkdirSync(x);
    tar(['-C', x, '-xf', ova]);
    const repack = (name: string, files: string[]) => {
      const out = path.join(dir, name);
      tar(['--format=ustar', '-C', x, '-cf', out, ...files]);
      return check(out);
    };
    const reordered = repack('reordered.ova', ['mini-disk1.vmdk', 'mini.ovf', 'mini.mf']);
    assert.deepEqual([reordered.status, reordered.stderr.trim()], [1, 'ovf-check: the descriptor is not the first file']);

    const ovf = readFileSync(path.join(x, 'mini.ovf'), 'utf8');
    writeFileSync(path.join(x, 'mini.ovf'), ovf.replace(/(<rasd:Caption>1?[^<]*virtual CPU<\/rasd:Caption>)(\s*)(<rasd:Description>[^<]*<\/rasd:Description>)/, '$3$2$1'));
    const unordered = repack('unordered.ova', ['mini.ovf', 'mini.mf', 'mini-disk1.vmdk']);
    assert.deepEqual([unordered.status, unordered.stderr.trim()], [1, "ovf-check: Item: RASD elements out of the schema's order: ['Description', 'Caption', 'ElementName', 'InstanceID', 'ResourceType', 'VirtualQuantity']"]);

    writeFileSync(path.join(x, 'mini.ovf'), ovf);
    const disk = readFileSync(path.join(x, 'mini-disk1.vmdk'));
    disk.writeUInt8(disk.readUInt8(disk.length - 1024) ^ 1, disk.length - 1024);
    writeFileSync(path.join(x, 'mini-disk1.vmdk'), disk);
    const tampered = repack('tampered.ova', ['mini.ovf', 'mini.mf', 'mini-disk1.vmdk']);
    assert.deepEqual([tampered.status, tampered.stderr.trim()], [1, 'ovf-check: manifest: the digest of mini-disk1.vmdk is wrong']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

