import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, copyFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { cli, lab, repo, tempLab, serve, userNetworking, eventually, sshRun, readJson, freePort, publicKeysOf } from './helpers.js';
import { miniGuest } from '../src/distros/mini/guest.js';
import type { InventoryData } from '../src/inventory/types.js';

const db = (dir: string) => readJson<InventoryData>(path.join(dir, 'inventory', 'db.json'));
/** The QEMU of this lab's VM, found by its pidfile path (other labs' VMs may share the name). */
const qemuOf = async (dir: string, vm: string) =>
  (await execa('pgrep', ['-f', `qemu-system-x86_64 -name ${vm} .*${path.join(dir, 'inventory', 'vms', vm)}/`], { reject: false })).stdout.trim();

/** The scaffold on user networking, with extra images for the PXE and ISO paths. */
const withImages = (s: string) =>
  userNetworking(s).replace(
    '    mini: {',
    `    minipxe: { distro: 'mini', kickstart: 'kickstart/mini-ks.cfg', memory: 256, disk: 64, install: 'pxe' },
    isolike: { distro: 'centos', iso: 'iso/isolike.iso', kickstart: 'kickstart/mini-ks.cfg', memory: 256, disk: 64 },
    mini: {`,
  );

test('image build by direct kernel boot: callback recorded, a rerun is a no-op, exported it boots by itself, a clone boots with its own name, MAC and host key, stop and delete leave nothing', { timeout: 600_000 }, async () => {
  // Installed guests call back to the configured port: a free one for this test.
  const port = await freePort();
  const { dir, cleanup } = await tempLab((s) => withImages(s).replace('serverPort: 8077', `serverPort: ${port}`));
  let served: Awaited<ReturnType<typeof serve>> | undefined;
  try {
    // No server runs: the build starts one of its own for the install. --follow: the installer's console as it runs.
    const build = await lab(['--lab', dir, 'image', 'build', 'mini', '--follow']);
    assert.equal(build.exitCode, 0, build.stderr);
    assert.match(build.stdout, /^mini: installed in [\d.]+ s$/m);
    assert.match(build.stderr, /wait for the callback: done/);
    assert.match(build.stderr, /^mini console: mini: installing mini\r?$/m, 'the installer\'s own lines, as it printed them');
    assert.match(build.stderr, /^mini console: mini: installed\r?$[^]*^mini console: mini: powering off\r?$/m);
    const consoleSoFar = await lab(['--lab', dir, 'console', 'mini']);
    assert.equal(consoleSoFar.exitCode, 0, consoleSoFar.stderr);
    assert.match(consoleSoFar.stdout, /^mini: installed$/m);
    const unknown = await lab(['--lab', dir, 'console', 'nosuch']);
    assert.equal(unknown.exitCode, 2);
    assert.match(unknown.stderr, /^lab: no VM "nosuch" in environments\.ts; VMs: /);
    assert.equal(unknown.stderr.trim().split('\n').length, 1);
    const image = db(dir).imageVms.mini!;
    assert.equal(image.bootCount, 1);
    // Its host keys are the ones lab made for it (handed over by fw_cfg, no key made in the guest), pinned at its callback.
    assert.deepEqual([image.hostKey, ...(image.otherKeys ?? [])], madeKeys(dir, 'mini'));
    assert.doesNotMatch(build.stderr, /cannot be read/);
    // The install's own callbacks: %pre said started, %post installed (the image VM is never booted from its disk here).
    assert.deepEqual(Object.keys(image.stages ?? {}), ['started', 'installed'], JSON.stringify(image));
    assert.ok(image.stages!.started! >= image.installStarted! && image.stages!.installed! > image.stages!.started!);
    assert.equal(db(dir).images.mini!.state, 'installed');
    assert.equal(existsSync(path.join(dir, 'inventory', 'server.json')), false, 'the build stopped its server');

    const again = await lab(['--lab', dir, 'image', 'build', 'mini']);
    assert.match(again.stdout, /^mini: installed already/m);
    const list = JSON.parse((await lab(['--lab', dir, 'image', 'list', '--json'])).stdout) as { name: string; state: string; vm: string; stage?: { stage: string; seconds: number } }[];
    assert.deepEqual(list.find((r) => r.name === 'mini'), { ...list.find((r) => r.name === 'mini'), state: 'installed', vm: 'stopped' });
    const took = Math.round((Date.parse(image.stages!.installed!) - Date.parse(image.stages!.started!)) / 1000);
    assert.deepEqual(list.find((r) => r.name === 'mini')!.stage, { stage: 'installed', at: image.stages!.installed, seconds: took });
    assert.match((await lab(['--lab', dir, 'image', 'list'])).stdout, new RegExp(`^mini .* installed in ${took} s `, 'm'));

    served = await serve(dir, { configuredPort: true });

    // Exported, it boots by itself with plain QEMU (no kernel given: extlinux on its disk) and calls back as the image VM.
    const exported = path.join(dir, 'mini.qcow2');
    const exp = await lab(['--lab', dir, 'image', 'export', 'mini', '--out', exported]);
    assert.equal(exp.exitCode, 0, exp.stderr);
    assert.match(exp.stdout, /^mini: exported to .*mini\.qcow2 \(qcow2, [\d.]+ MiB\)$/m);
    const info = JSON.parse((await execa('qemu-img', ['info', '--output', 'json', exported])).stdout) as { format: string; 'backing-filename'?: string };
    assert.deepEqual([info.format, info['backing-filename']], ['qcow2', undefined], 'flattened: no backing file');
    // Booted by plain QEMU (a throwaway overlay for its writes where asked), it calls back as the image, through extlinux.
    const bootPlain = async (file: string, format: string, what: string, drive = '') => {
      const plainConsole = path.join(dir, `plain-console-${format}.log`);
      const boots = db(dir).imageVms.mini?.bootCount ?? 0;
      const plain = execa('qemu-system-x86_64', ['-accel', 'tcg', '-m', '256', '-display', 'none', '-no-reboot', '-drive', `file=${file},format=${format},if=virtio${drive}`,
        '-nic', `user,model=virtio-net-pci,mac=${db(dir).leases.mini!.mac}`, '-serial', `file:${plainConsole}`], { reject: false });
      try {
        await eventually(() => (db(dir).imageVms.mini?.bootCount ?? 0) > boots, 120_000, `${what}, booted by plain QEMU, to call back`);
        assert.match(readFileSync(plainConsole, 'utf8'), /SYSLINUX[\s\S]*mini: booting mini/);
        assert.equal(db(dir).imageVms.mini!.hostKey, image.hostKey, 'the image itself, its key pinned');
      } finally {
        plain.kill('SIGKILL');
        await plain;
      }
    };
    await bootPlain(exported, 'qcow2', 'the exported disk');
    const vmdk = path.join(dir, 'mini.vmdk');
    assert.equal((await lab(['--lab', dir, 'image', 'export', 'mini', '--format', 'vmdk', '--out', vmdk])).exitCode, 0);
    assert.equal((JSON.parse((await execa('qemu-img', ['info', '--output', 'json', vmdk])).stdout) as { format: string }).format, 'vmdk');
    const badFormat = await lab(['--lab', dir, 'image', 'export', 'mini', '--format', 'iso', '--out', vmdk]);
    assert.deepEqual([badFormat.exitCode, badFormat.stderr.trim()], [2, 'lab: --format: no format "iso"; formats: qcow2, vmdk, ova, raw, box']);
    // An OVA: its OVF read as a consumer reads it (test/fixtures/ovf/check.py), unpacked, its disk a streamOptimized VMDK of the image's size that boots.
    const ova = path.join(dir, 'mini.ova');
    assert.equal((await lab(['--lab', dir, 'image', 'export', 'mini', '--format', 'ova', '--out', ova])).exitCode, 0);
    const checked = await execa('python3', [path.join(repo, 'test', 'fixtures', 'ovf', 'check.py'), ova], { reject: false });
    assert.equal(checked.exitCode, 0, checked.stderr);
    const ovf = JSON.parse(checked.stdout) as { files: string[]; name: string; cpus: number; memory: string; disks: { file: string; capacity: number }[] };
    assert.deepEqual([ovf.files, ovf.name, ovf.cpus, ovf.memory], [['mini.ovf', 'mini.mf', 'mini-disk1.vmdk'], 'mini', 1, '256 MegaBytes']);
    const unpacked = path.join(dir, 'ova');
    mkdirSync(unpacked);
    await execa('tar', ['-C', unpacked, '-xf', ova]);
    const disk = JSON.parse((await execa('qemu-img', ['info', '--output', 'json', path.join(unpacked, 'mini-disk1.vmdk')])).stdout) as { format: string; 'virtual-size': number; 'format-specific'?: { data?: { 'create-type'?: string } } };
    const qcow2Size = (JSON.parse((await execa('qemu-img', ['info', '--output', 'json', exported])).stdout) as { 'virtual-size': number })['virtual-size'];
    assert.deepEqual([disk.format, disk['format-specific']?.data?.['create-type'], disk['virtual-size'], ovf.disks[0]!.capacity], ['vmdk', 'streamOptimized', qcow2Size, qcow2Size]);
    await bootPlain(path.join(unpacked, 'mini-disk1.vmdk'), 'vmdk', "the OVA's disk", ',snapshot=on');
    // A Vagrant box (vagrant-libvirt's layout) that Debian's vagrant adds.
    const box = path.join(dir, 'mini.box');
    assert.equal((await lab(['--lab', dir, 'image', 'export', 'mini', '--format', 'box', '--out', box])).exitCode, 0);
    assert.deepEqual((await execa('tar', ['tzf', box])).stdout.split('\n').sort(), ['Vagrantfile', 'box.img', 'metadata.json']);
    const vagrantEnv = { VAGRANT_HOME: path.join(dir, '.vagrant.d'), VAGRANT_CHECKPOINT_DISABLE: '1' };
    const added = await execa('vagrant', ['box', 'add', '--name', 'lab-test/mini', box], { reject: false, env: vagrantEnv });
    assert.equal(added.exitCode, 0, String(added.stdout) + String(added.stderr));
    assert.match((await execa('vagrant', ['box', 'list'], { env: vagrantEnv })).stdout, /^lab-test\/mini +\(libvirt, 0\)$/m);
    const clone = await lab(['--lab', dir, 'image', 'clone', 'mini', 'demo-worker-1']);
    assert.equal(clone.exitCode, 0, clone.stderr);
    const start = await lab(['--lab', dir, 'image', 'start', 'demo-worker-1']);
    assert.equal(start.exitCode, 0, start.stderr);
    await eventually(() => (db(dir).hosts['demo-worker-1']?.bootCount ?? 0) >= 1, 120_000, 'the clone to call back');
    const w = db(dir).hosts['demo-worker-1']!;
    assert.equal(w.mac, db(dir).leases['demo-worker-1']!.mac);
    assert.notEqual(w.mac, image.mac);
    assert.notEqual(w.hostKey, image.hostKey, 'a clone has its own host key');
    assert.deepEqual([w.hostKey, ...(w.otherKeys ?? [])], madeKeys(dir, 'demo-worker-1'), 'the ones lab made for it');
    assert.ok(w.otherKeys?.[0]?.startsWith('ssh-rsa ') && image.otherKeys?.[0]?.startsWith('ssh-rsa ') && w.otherKeys[0] !== image.otherKeys[0], 'and its own RSA key, pinned in its install window');
    assert.equal(w.env, 'demo');
    const key = readFileSync(path.join(dir, 'inventory', 'lab_ed25519'), 'utf8');
    assert.equal((await sshRun(w.reach!.port, key, w.hostKey!.split(' ')[1]!, 'hostname')).trim(), 'demo-worker-1');

    // Typed into its serial console, the guest's shell runs it: piped in (the output shown until the console is quiet) and from a terminal (script's pty: raw keys, Ctrl-] detaches).
    const typed = await execa(process.execPath, [cli, '--lab', dir, 'console', 'demo-worker-1'], { input: 'echo typed-$((6*7))\n', reject: false, timeout: 30_000 });
    assert.equal(typed.exitCode, 0, typed.stderr);
    assert.match(typed.stdout, /typed-42/);
    assert.match(typed.stderr, /^demo-worker-1: attached to its serial console; detach with Ctrl-\]$/m);
    assert.match(typed.stderr, /^demo-worker-1: input ended$/m);
    const term = await execa('sh', ['-c', `(printf 'echo tty-$((6*7))\\r'; sleep 3; printf '\\035') | script -qfec "${process.execPath} ${cli} --lab ${dir} console demo-worker-1" /dev/null`], { reject: false, timeout: 30_000 });
    assert.match(term.stdout, /tty-42/, term.stdout + term.stderr);
    assert.match(term.stdout, /demo-worker-1: detached/);

    // Its console followed while it runs: the follow ends by itself when the VM stops.
    const follow = execa(process.execPath, [cli, '--lab', dir, 'console', 'demo-worker-1', '--follow'], { reject: false });
    await new Promise((r) => setTimeout(r, 1500));
    const stop = await lab(['--lab', dir, 'image', 'stop', 'demo-worker-1', '--deadline', '60']);
    assert.match(stop.stdout, /demo-worker-1: powered off/);
    const followed = await follow;
    assert.equal(followed.exitCode, 0, followed.stderr);
    assert.match(followed.stdout, /taking the identity demo-worker-1[^]*power button: shutting down/);
    const refused = await lab(['--lab', dir, 'image', 'del', 'demo-worker-1']);
    assert.equal(refused.exitCode, 2, 'no terminal to confirm on, no --force');
    for (const vm of ['demo-worker-1', 'mini']) {
      const del = await lab(['--lab', dir, 'image', 'del', vm, '--force']);
      assert.equal(del.exitCode, 0, del.stderr);
      assert.equal(existsSync(path.join(dir, 'inventory', 'vms', vm)), false);
      assert.equal(await qemuOf(dir, vm), '');
      assert.equal(db(dir).hosts[vm] ?? db(dir).imageVms[vm], undefined);
    }
  } finally {
    await served?.stop();
    for (const vm of ['demo-worker-1', 'mini']) await lab(['--lab', dir, 'image', 'del', vm, '--force']);
    cleanup();
  }
});

test('image build over PXE (QEMU TFTP, pxelinux) and from an installer ISO (kernel from images/pxeboot/, ISO as CD-ROM)', { timeout: 600_000 }, async () => {
  const port = await freePort();
  const { dir, cleanup } = await tempLab((s) => withImages(s).replace('serverPort: 8077', `serverPort: ${port}`));
  try {
    // An ISO laid out as CentOS's: images/pxeboot/vmlinuz and initrd.img (here the mini guest's).
    const guest = await miniGuest();
    const tree = path.join(dir, 'isotree', 'images', 'pxeboot');
    mkdirSync(tree, { recursive: true });
    copyFileSync(guest.kernel, path.join(tree, 'vmlinuz'));
    copyFileSync(guest.initrd, path.join(tree, 'initrd.img'));
    await execa('genisoimage', ['-quiet', '-R', '-J', '-V', 'ISOLIKE', '-o', path.join(dir, 'iso', 'isolike.iso'), path.join(dir, 'isotree')]);

    for (const name of ['minipxe', 'isolike']) {
      const r = await lab(['--lab', dir, 'image', 'build', name]);
      assert.equal(r.exitCode, 0, r.stderr);
      assert.equal(db(dir).imageVms[name]!.bootCount, 1, name);
      assert.equal(db(dir).hosts[name], undefined, 'an image VM is not a host');
      assert.equal(db(dir).images[name]!.state, 'installed');
      assert.equal(db(dir).images[name]!.install, name === 'minipxe' ? 'pxe' : 'kernel');
    }
    const cfg = readFileSync(path.join(dir, 'inventory', 'tftp', `pxelinux.cfg/01-${db(dir).leases.minipxe!.mac.replace(/:/g, '-')}`), 'utf8');
    assert.match(cfg, /inst\.ks=http:\/\/10\.0\.2\.2:\d+\/ks\/minipxe/);
  } finally {
    for (const vm of ['minipxe', 'isolike']) await lab(['--lab', dir, 'image', 'del', vm, '--force']);
    cleanup();
  }
});

test('an install that never calls back is stalled at its deadline: console tail shown and kept, the VM removed', { timeout: 300_000 }, async () => {
  // A kickstart with no callback in %post, whose installer stays up instead of powering off.
  const port = await freePort();
  const { dir, cleanup } = await tempLab((s) =>
    userNetworking(s).replace('serverPort: 8077', `serverPort: ${port}`).replace('    mini: {', "    silent: { distro: 'mini', kickstart: 'kickstart/silent.cfg', memory: 256, disk: 64, installTimeout: 25 },\n    mini: {"),
  );
  try {
    const r = await lab(['--lab', dir, 'image', 'build', 'silent']);
    assert.equal(r.exitCode, 1);
    assert.match(r.stderr, /lab: image silent: no callback within 25 s \(installTimeout\); console \(last lines, kept in .*\):/);
    assert.match(r.stderr, /\| mini: running %post/);
    assert.match(r.stderr, /undid "create VM"/);
    const rec = db(dir).images.silent!;
    assert.equal(rec.state, 'stalled');
    assert.ok(existsSync(rec.consoleLog!));
    assert.equal(existsSync(path.join(dir, 'inventory', 'vms', 'silent')), false);
    assert.equal(await qemuOf(dir, 'silent'), '');
    assert.equal(db(dir).imageVms.silent!.state, 'installing', 'it fetched its kickstart');
  } finally {
    await lab(['--lab', dir, 'image', 'del', 'silent', '--force']);
    cleanup();
  }
});

test('an interrupted build is undone (Ctrl-C) or cleaned up by the next build (killed outright)', { timeout: 600_000 }, async () => {
  const port = await freePort();
  const { dir, cleanup } = await tempLab((s) => userNetworking(s).replace('serverPort: 8077', `serverPort: ${port}`));
  const { cli } = await import('./helpers.js');
  try {
    const startBuild = () => execa(process.execPath, [cli, '--lab', dir, 'image', 'build', 'mini'], { reject: false, all: true });
    const untilWaiting = async (child: ReturnType<typeof startBuild>) => {
      let out = '';
      child.all!.on('data', (d: Buffer) => (out += d.toString()));
      await eventually(() => out.includes('wait for the callback'), 120_000, 'the build to boot its installer');
    };

    const interrupted = startBuild();
    await untilWaiting(interrupted);
    interrupted.kill('SIGINT');
    const r = await interrupted;
    assert.notEqual(r.exitCode, 0);
    assert.match(String(r.all), /interrupted by SIGINT/);
    assert.match(String(r.all), /undid "create VM"/);
    assert.equal(existsSync(path.join(dir, 'inventory', 'vms', 'mini')), false);
    assert.equal(await qemuOf(dir, 'mini'), '');
    assert.equal(db(dir).images.mini!.state, 'failed');

    const killed = startBuild();
    await untilWaiting(killed);
    killed.kill('SIGKILL');
    await killed;
    assert.ok(existsSync(path.join(dir, 'inventory', 'vms', 'mini')), 'a killed build leaves its VM');
    const rerun = await lab(['--lab', dir, 'image', 'build', 'mini']);
    assert.equal(rerun.exitCode, 0, rerun.stderr);
    assert.match(rerun.stderr, /removing the VM mini left by an interrupted build/);
    assert.equal(db(dir).images.mini!.state, 'installed');
  } finally {
    await lab(['--lab', dir, 'image', 'del', 'mini', '--force']);
    cleanup();
  }
});

/** The public lines of the host keys lab made for a VM (inventory/vms/<vm>/host-keys: ed25519, then RSA). */
function madeKeys(dir: string, vm: string): string[] {
  return publicKeysOf(readFileSync(path.join(dir, 'inventory', 'vms', vm, 'host-keys'), 'utf8'));
}
