import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readFileSync, existsSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { repo, lab, tempLab, userNetworking } from './helpers.js';
import { parseVersion, parseMachineReadable, parseVmList, vboxError, isTransient, macFromVBox } from '../src/providers/virtualbox/parse.js';
import { VBoxDriver } from '../src/providers/virtualbox/driver.js';
import { VirtualBoxProvider, vboxUserHome } from '../src/providers/virtualbox/provider.js';
import type { VmSpec } from '../src/providers/types.js';

const fixtures = path.join(repo, 'test', 'fixtures', 'vboxmanage');
const fixture = (f: string) => readFileSync(path.join(fixtures, f), 'utf8');

test("VirtualBox's TFTP folder follows VBOX_USER_HOME, as VirtualBox does, else the platform's user home", () => {
  assert.equal(vboxUserHome({ VBOX_USER_HOME: '/srv/vbox' }, 'linux', '/home/u'), '/srv/vbox');
  assert.equal(vboxUserHome({}, 'linux', '/home/u'), '/home/u/.config/VirtualBox');
  assert.equal(vboxUserHome({}, 'darwin', '/Users/u'), '/Users/u/Library/VirtualBox');
});

test('recorded VBoxManage output parses into typed values', () => {
  assert.deepEqual(parseVersion(fixture('version-7.0.txt')), { major: 7, minor: 0, patch: 10, raw: '7.0.10r158379' });
  assert.equal(parseVersion(fixture('version-7.0-ubuntu-warning.txt'))!.patch, 16);
  assert.equal(parseVersion(fixture('version-6.1.txt'))!.major, 6);
  assert.deepEqual(parseVmList(fixture('list-vms.txt')), [
    { name: 'Ubuntu', uuid: '2e16b1fc-675d-4a7a-a9a1-e89a8bde7874' },
    { name: 'AlmaLinux9', uuid: '6ebc2119-de35-467b-a695-047eb2e424f5' },
  ]);
  assert.deepEqual(parseVmList(''), []);
  const info = parseMachineReadable(fixture('showvminfo-saved.txt'));
  assert.equal(info.get('VMState'), 'saved');
  assert.equal(info.get('memory'), '1024');
  assert.equal(info.get('SATA Controller-0-0'), '/Users/fix/VirtualBox VMs/go-virtualbox/ubuntu-16.04-amd64-disk001.vmdk');
  assert.equal(info.get('Forwarding(0)'), 'ssh,tcp,127.0.0.1,2222,,22');
  assert.equal(info.get('vrdeproperty[VideoChannel/Enabled]'), '<not set>');
  assert.equal(macFromVBox(info.get('macaddress1')!), '08:00:27:ee:1d:f7');
  const err = vboxError(fixture('error-locked.txt'))!;
  assert.match(err, /already locked by a session/);
  assert.equal(isTransient(err), true);
  assert.equal(vboxError('0%...100%\n'), undefined);
});

function standIn(version: string, extra: Record<string, string> = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), 'lab-vbox-'));
  const env = {
    VBOX_STANDIN_VERSION: version,
    VBOX_STANDIN_STATE: path.join(dir, 'state.json'),
    VBOX_STANDIN_LOG: path.join(dir, 'calls.log'),
    ...extra,
  };
  const saved = { ...process.env };
  Object.assign(process.env, env);
  const driver = new VBoxDriver(path.join(fixtures, 'VBoxManage'), { tries: 5, delayMs: 10 });
  const provider = new VirtualBoxProvider(path.join(dir, 'vms'), driver, path.join(dir, 'TFTP'));
  return {
    dir,
    provider,
    calls: () => readFileSync(env.VBOX_STANDIN_LOG, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as string[]),
    state: () => JSON.parse(readFileSync(env.VBOX_STANDIN_STATE, 'utf8')) as { vms: Record<string, { name: string; state: string; settings: Record<string, unknown>; snapshots: string[] }> },
    done: () => {
      process.env = saved;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const spec = (name: string, mac: string, network: VmSpec['network']): VmSpec => ({ name, cpus: 2, memoryMiB: 512, diskMiB: 2048, mac, network });

test('VirtualBox 7.x: a whole build, start, stop, clone and delete runs through the real provider against the stand-in', async () => {
  const vb = standIn('7.0.10r158379', { VBOX_STANDIN_LOCKED_ONCE: 'startvm' });
  try {
    const kernel = path.join(vb.dir, 'vmlinuz');
    const initrd = path.join(vb.dir, 'initrd.img');
    writeFileSync(kernel, 'kernel');
    writeFileSync(initrd, 'initrd');
    const info = await vb.provider.create(spec('mini', '08:00:27:12:34:56', { mode: 'user', sshPort: 2222 }));
    assert.deepEqual(info, { name: 'mini', state: 'stopped', macs: ['08:00:27:12:34:56'], sshForward: { address: '127.0.0.1', port: 2222 } });
    const modify = vb.calls().find((c) => c[0] === 'modifyvm')!;
    for (const want of [['--nic1', 'nat'], ['--nat-localhostreachable1', 'on'], ['--audio-driver', 'none'], ['--ioapic', 'on'], ['--natpf1', 'ssh,tcp,127.0.0.1,2222,,22'], ['--macaddress1', '080027123456']]) {
      const i = modify.indexOf(want[0]!);
      assert.ok(i > 0 && modify[i + 1] === want[1], `modifyvm ${want.join(' ')}`);
    }

    // The installer's kernel line reaches the guest through NAT TFTP: <vm>.pxe and pxelinux.cfg/01-<mac>.
    await vb.provider.start('mini', { boot: { kind: 'kernel', kernel, initrd, append: 'inst.ks=http://10.0.2.2:8077/ks/mini console=ttyS0' }, noReboot: true });
    assert.ok(existsSync(path.join(vb.dir, 'TFTP', 'mini.pxe')));
    assert.match(readFileSync(path.join(vb.dir, 'TFTP', 'pxelinux.cfg', '01-08-00-27-12-34-56'), 'utf8'), /APPEND initrd=lab\/mini\/initrd.img inst.ks=http:\/\/10.0.2.2:8077\/ks\/mini console=ttyS0/);
    assert.equal(vb.calls().filter((c) => c[0] === 'startvm').length, 2, 'the session lock was retried');
    assert.equal((await vb.provider.info('mini')).state, 'running');
    assert.match(await vb.provider.consoleTail('mini', 5), /mini booted \(headless\), boot1=net/);

    assert.equal(await vb.provider.stop('mini', 5000), 'graceful');
    assert.equal(await vb.provider.stop('mini', 5000), 'already');

    const clone = await vb.provider.clone('mini', spec('demo-worker-1', '08:00:27:00:00:01', { mode: 'user', sshPort: 2223 }));
    assert.deepEqual(clone.macs, ['08:00:27:00:00:01']);
    assert.equal(clone.sshForward?.port, 2223);
    assert.deepEqual(vb.state().vms[Object.keys(vb.state().vms).find((u) => vb.state().vms[u]!.name === 'mini')!]!.snapshots, ['lab-base']);
    const cloneCall = vb.calls().find((c) => c[0] === 'clonevm')!;
    assert.deepEqual(cloneCall.slice(2, 6), ['--snapshot', 'lab-base', '--options', 'link']);
    assert.deepEqual((await vb.provider.list()).map((v) => v.name), ['demo-worker-1', 'mini']);

    for (const vm of ['demo-worker-1', 'mini']) await vb.provider.delete(vm);
    assert.deepEqual(vb.state().vms, {});
    assert.equal(existsSync(path.join(vb.dir, 'TFTP', 'mini.pxe')), false);
    assert.equal(existsSync(path.join(vb.dir, 'vms', 'mini')), false);
  } finally {
    vb.done();
  }
});

test('VirtualBox 6.1: host-only adapter and the old audio flag; a guest that ignores ACPI is powered off at the deadline', async () => {
  const vb = standIn('6.1.28r147628', { VBOX_STANDIN_IGNORE_ACPI: '1' });
  try {
    await vb.provider.create(spec('db-1', '08:00:27:00:00:02', { mode: 'bridge', bridge: 'vboxnet0', tap: 'unused' }));
    const modify = vb.calls().find((c) => c[0] === 'modifyvm')!;
    assert.ok(modify.includes('--hostonlyadapter1') && modify.includes('vboxnet0'));
    assert.ok(modify.includes('--audio') && !modify.includes('--audio-driver'));
    assert.ok(!modify.includes('--nat-localhostreachable2'), 'no such option before 7.0');
    await vb.provider.start('db-1', { boot: { kind: 'disk' } });
    assert.equal(await vb.provider.stop('db-1', 1200), 'forced');
    assert.equal((await vb.provider.info('db-1')).state, 'stopped');
    await vb.provider.delete('db-1');
  } finally {
    vb.done();
  }
});

test('VBoxManage errors become one readable error: exit 0 with an error on stderr, a missing VBoxManage', async () => {
  const vb = standIn('7.0.10r158379');
  try {
    // The stand-in refuses what the real one refuses, with its own words.
    const driver = new VBoxDriver(path.join(fixtures, 'VBoxManage'), { tries: 2, delayMs: 10 });
    await assert.rejects(driver.modifyVm('nope', ['--memory', '1']), /VBoxManage modifyvm nope failed: Could not find a registered machine named 'nope'/);
    await assert.rejects(driver.exec(['modifyvm', 'x', '--audio', 'none']), /Syntax error: unknown option: --audio/);
    await assert.rejects(new VBoxDriver('/nonexistent/VBoxManage').getVersion(), /VBoxManage is not installed/);
  } finally {
    vb.done();
  }
});

test('lab image build, clone, start, stop and del with provider virtualbox run through the CLI against the stand-in', { timeout: 120_000 }, async () => {
  const vb = standIn('7.0.10r158379');
  // VirtualBox's user home, as a user sets it: lab's TFTP folder and the stand-in's both follow it.
  const env = { LAB_VBOXMANAGE: path.join(fixtures, 'VBoxManage'), VBOX_USER_HOME: vb.dir };
  const { dir, cleanup } = await tempLab((s) => userNetworking(s).replace("provider: 'qemu'", "provider: 'virtualbox'"));
  try {
    const run = (args: string[]) => lab(['--lab', dir, ...args], { env });
    // lab doctor asks the (stand-in) VBoxManage its version; without one it says how to get it.
    const doctor = JSON.parse((await run(['doctor', '--json'])).stdout) as { name: string; status: string; detail: string; fix?: string }[];
    assert.deepEqual(doctor.find((c) => c.name === 'VBoxManage'), { name: 'VBoxManage', status: 'ok', detail: `${env.LAB_VBOXMANAGE}: VirtualBox 7.0.10` });
    const missing = await lab(['--lab', dir, 'doctor'], { env: { LAB_VBOXMANAGE: '/nonexistent/VBoxManage' } });
    assert.equal(missing.exitCode, 3);
    assert.match(missing.stdout, /^FAIL  VBoxManage +\/nonexistent\/VBoxManage: VBoxManage is not installed.*\n +fix: install VirtualBox/m);
    const build = await run(['image', 'build', 'mini']);
    assert.equal(build.exitCode, 0, build.stderr);
    assert.match(build.stdout, /^mini: installed in/m);
    const db = JSON.parse(readFileSync(path.join(dir, 'inventory', 'db.json'), 'utf8'));
    assert.equal(db.imageVms.mini.bootCount, 1);
    assert.match(db.imageVms.mini.hostKey, /^ssh-ed25519 /);
    assert.equal(db.imageVms.mini.mac, db.leases.mini.mac);
    assert.match(db.leases.mini.mac, /^08:00:27:/, 'VirtualBox MACs for a VirtualBox lab');
    assert.equal((await run(['image', 'clone', 'mini', 'demo-worker-1'])).exitCode, 0);
    assert.equal((await run(['image', 'start', 'demo-worker-1'])).exitCode, 0);
    const list = JSON.parse((await run(['image', 'list', '--json'])).stdout) as { name: string; state: string; vm: string }[];
    assert.deepEqual(list.find((r) => r.name === 'mini'), { ...list.find((r) => r.name === 'mini')!, state: 'installed', vm: 'stopped' });
    assert.match((await run(['image', 'stop', 'demo-worker-1'])).stdout, /powered off/);
    for (const vm of ['demo-worker-1', 'mini']) assert.equal((await run(['image', 'del', vm, '--force'])).exitCode, 0);
    assert.deepEqual(vb.state().vms, {});
  } finally {
    cleanup();
    vb.done();
  }
});

test('VirtualBox: a PXE install copies the TFTP tree into VirtualBox\'s TFTP folder as <vm>.pxe; the installer ISO goes on one IDE controller', async () => {
  const vb = standIn('7.0.10r158379');
  try {
    await vb.provider.create(spec('c', '08:00:27:00:00:09', { mode: 'user', sshPort: 2299 }));
    const iso = path.join(vb.dir, 'installer.iso');
    writeFileSync(iso, 'iso');
    const tree = path.join(vb.dir, 'tree');
    mkdirSync(path.join(tree, 'pxelinux.cfg'), { recursive: true });
    writeFileSync(path.join(tree, 'pxelinux.0'), 'pxelinux');
    writeFileSync(path.join(tree, 'pxelinux.cfg', '01-08-00-27-00-00-09'), 'APPEND inst.ks=http://10.0.2.2:8077/ks/c');
    await vb.provider.start('c', { boot: { kind: 'pxe', tftpRoot: tree, bootfile: 'pxelinux.0' }, cdrom: iso });
    assert.equal(readFileSync(path.join(vb.dir, 'TFTP', 'c.pxe'), 'utf8'), 'pxelinux');
    assert.ok(existsSync(path.join(vb.dir, 'TFTP', 'pxelinux.cfg', '01-08-00-27-00-00-09')));
    const vm = () => Object.values(vb.state().vms)[0] as unknown as { controllers: string[]; attached: Record<string, string> };
    assert.deepEqual(vm().controllers, ['SATA', 'IDE']);
    assert.equal(vm().attached['IDE-0-1'], iso);
    await vb.provider.stop('c', 1000);
    await vb.provider.start('c', { boot: { kind: 'disk' }, cdrom: iso });
    assert.deepEqual(vm().controllers, ['SATA', 'IDE'], 'the IDE controller is added once');
    await vb.provider.delete('c');
  } finally {
    vb.done();
  }
});
