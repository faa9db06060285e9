import { lastLines } from '../src/providers/console.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readFileSync, readdirSync, existsSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { Readable, Writable } from 'node:stream';
import { attachConsole } from '../src/providers/attach.js';
import { repo, lab, tempLab, userNetworking, freePort } from './helpers.js';
import { serveInNs } from './netns.js';
import type { InventoryData } from '../src/inventory/types.js';
import { parseVersion, parseMachineReadable, parseVmList, vboxError, isTransient, macFromVBox } from '../src/providers/virtualbox/parse.js';
import { VBoxDriver } from '../src/providers/virtualbox/driver.js';
import { VirtualBoxProvider, vboxUserHome } from '../src/providers/virtualbox/provider.js';
import type { VmSpec } from '../src/providers/types.js';
import type { LabNetwork } from '../src/providers/virtualbox/network.js';

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

/** A stand-in VirtualBox of this version on this host OS, and the provider for a lab named "test" (bridged when network is given). */
function standIn(version: string, extra: Record<string, string> = {}, o: { hostOs?: NodeJS.Platform; network?: LabNetwork } = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), 'lab-vbox-'));
  const env = {
    VBOX_STANDIN_VERSION: version,
    VBOX_STANDIN_HOST_OS: o.hostOs ?? 'linux',
    VBOX_STANDIN_STATE: path.join(dir, 'state.json'),
    VBOX_STANDIN_LOG: path.join(dir, 'calls.log'),
    ...extra,
  };
  const saved = { ...process.env };
  Object.assign(process.env, env);
  const driver = new VBoxDriver(path.join(fixtures, 'VBoxManage'), { tries: 5, delayMs: 10 });
  const said: string[] = [];
  const provider = new VirtualBoxProvider(path.join(dir, 'vms'), driver, { lab: 'test', tftpRoot: path.join(dir, 'TFTP'), network: o.network, hostOs: o.hostOs ?? 'linux', say: (l) => said.push(l) });
  return {
    dir,
    provider,
    said,
    calls: () => readFileSync(env.VBOX_STANDIN_LOG, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as string[]),
    state: () =>
      JSON.parse(readFileSync(env.VBOX_STANDIN_STATE, 'utf8')) as {
        vms: Record<string, { name: string; groups: string; state: string; settings: Record<string, unknown>; snapshots: string[] }>;
        hostonlyifs: { name: string; ip: string; netmask: string }[];
        hostonlynets: { name: string; netmask: string; lower: string; upper: string }[];
      },
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
    // VirtualBox's VM names are global to the user: lab's carry the lab's name, and sit in its group.
    assert.ok(existsSync(path.join(vb.dir, 'TFTP', 'test-mini.pxe')));
    assert.deepEqual(Object.values(vb.state().vms).map((v) => [v.name, v.groups]), [['test-mini', '/test']]);
    assert.match(readFileSync(path.join(vb.dir, 'TFTP', 'pxelinux.cfg', '01-08-00-27-12-34-56'), 'utf8'), /APPEND initrd=lab\/test-mini\/initrd.img inst.ks=http:\/\/10.0.2.2:8077\/ks\/mini console=ttyS0/);
    assert.equal(vb.calls().filter((c) => c[0] === 'startvm').length, 2, 'the session lock was retried');
    assert.equal((await vb.provider.info('mini')).state, 'running');
    assert.match(lastLines(await vb.provider.console('mini'), 5), /mini booted \(headless\), boot1=net/);

    // lab console: the UART is switched to a socket VirtualBox serves for the attach (lab keeps its file meanwhile), then back to its file.
    let typed = '';
    const output = new Writable({ write: (c: Buffer, _e, done) => void ((typed += c.toString()), done()) });
    const why = await attachConsole('mini', await vb.provider.consoleAttach!('mini'), { input: Readable.from([Buffer.from('echo typed-$((6*7))\n')]), output, say: () => undefined }, 500);
    assert.equal(why, 'input ended');
    assert.match(typed, /~ # echo typed-\$\(\(6\*7\)\)\r\ntyped-42\r\n~ # $/, 'echoed as typed, then run');
    assert.deepEqual(vb.calls().filter((c) => c[0] === 'controlvm' && c[2] === 'changeuartmode1').map((c) => c[3]), ['server', 'file']);
    assert.deepEqual(Object.values(vb.state().vms)[0]!.settings['--uartmode1'], ['file', path.join(vb.dir, 'vms', 'mini', 'console.log')]);
    assert.match(await vb.provider.console('mini'), /mini booted \(headless\)[^]*typed-42/, 'what it showed before the attach and during it');

    assert.equal(await vb.provider.stop('mini', 5000), 'graceful');
    assert.equal(await vb.provider.stop('mini', 5000), 'already');

    const clone = await vb.provider.clone('mini', spec('demo-worker-1', '08:00:27:00:00:01', { mode: 'user', sshPort: 2223 }));
    assert.deepEqual(clone.macs, ['08:00:27:00:00:01']);
    assert.equal(clone.sshForward?.port, 2223);
    assert.deepEqual(vb.state().vms[Object.keys(vb.state().vms).find((u) => vb.state().vms[u]!.name === 'test-mini')!]!.snapshots, ['lab-base']);
    const cloneCall = vb.calls().find((c) => c[0] === 'clonevm')!;
    assert.deepEqual(cloneCall.slice(2, 6), ['--snapshot', 'lab-base', '--options', 'link']);
    assert.deepEqual((await vb.provider.list()).map((v) => v.name), ['demo-worker-1', 'mini']);

    for (const vm of ['demo-worker-1', 'mini']) await vb.provider.delete(vm);
    assert.deepEqual(vb.state().vms, {});
    assert.equal(existsSync(path.join(vb.dir, 'TFTP', 'test-mini.pxe')), false);
    assert.equal(existsSync(path.join(vb.dir, 'vms', 'mini')), false);
  } finally {
    vb.done();
  }
});

test('VirtualBox snapshots for lab env snapshot: a running VM paused, captured with its state and left paused; a stopped one by its disk; a restore leaves the VM saved and resuming it does not boot it', async () => {
  const vb = standIn('7.0.10r158379');
  try {
    await vb.provider.create(spec('demo-lb-1', '08:00:27:00:00:0a', { mode: 'user', sshPort: 2230 }));
    await vb.provider.create(spec('demo-worker-1', '08:00:27:00:00:0b', { mode: 'user', sshPort: 2231 }));
    await vb.provider.start('demo-lb-1', { boot: { kind: 'disk' } });
    const snaps = vb.provider.snapshots;
    const vmOf = (n: string) => Object.values(vb.state().vms).find((v) => v.name === `test-${n}`)!;
    await snaps.pause('demo-lb-1');
    assert.equal((await vb.provider.info('demo-lb-1')).state, 'paused');
    assert.deepEqual(await snaps.take('demo-lb-1', 'lab-s1'), { memory: true });
    assert.equal(vmOf('demo-lb-1').state, 'paused', 'a paused VM stays paused while the others are captured');
    assert.deepEqual(await snaps.take('demo-worker-1', 'lab-s1'), { memory: false });
    await snaps.resume('demo-lb-1');
    assert.equal((await vb.provider.info('demo-lb-1')).state, 'running');
    assert.deepEqual(await snaps.list('demo-lb-1'), ['lab-s1']);

    // Restoring a running VM: powered off first (VirtualBox refuses otherwise), then saved at the captured moment.
    const before = vb.calls().length;
    await snaps.restore('demo-lb-1', 'lab-s1', true);
    assert.equal(vmOf('demo-lb-1').state, 'saved');
    const uuid = (n: string) => Object.keys(vb.state().vms).find((u) => vb.state().vms[u]!.name === `test-${n}`)!;
    assert.deepEqual(vb.calls().slice(before).filter((c) => c[0] !== 'showvminfo'), [['controlvm', uuid('demo-lb-1'), 'poweroff'], ['snapshot', uuid('demo-lb-1'), 'restore', 'lab-s1']]);
    // Resumed from its saved state: running with no boot (the stand-in writes a boot line only on a power-on).
    await snaps.resume('demo-lb-1');
    assert.equal((await vb.provider.info('demo-lb-1')).state, 'running');
    assert.match(lastLines(await vb.provider.console('demo-lb-1'), 1), /resumed from its saved state/);
    // A saved VM started by start-all resumes too: modifyvm would be refused (not mutable).
    await snaps.pause('demo-lb-1');
    await snaps.restore('demo-lb-1', 'lab-s1', true);
    await vb.provider.start('demo-lb-1', { boot: { kind: 'disk' } });
    assert.equal(vmOf('demo-lb-1').state, 'running');

    await snaps.restore('demo-worker-1', 'lab-s1', false);
    assert.equal(vmOf('demo-worker-1').state, 'poweroff');
    await snaps.remove('demo-worker-1', 'lab-s1');
    assert.deepEqual(await snaps.list('demo-worker-1'), []);
    const calls = vb.calls().length;
    await snaps.remove('demo-worker-1', 'lab-s1');
    assert.equal(vb.calls().filter((c, i) => i >= calls && c[0] === 'snapshot').length, 0, 'removing a tag the VM does not hold asks nothing of VirtualBox');
    for (const vm of ['demo-lb-1', 'demo-worker-1']) await vb.provider.delete(vm);
  } finally {
    vb.done();
  }
});

const labNet: LabNetwork = { lab: 'test', cidr: '192.168.56.0/24', gateway: '192.168.56.1' };
const bridged = { mode: 'bridge', bridge: 'labnet', tap: 'unused' } as const;

test('VirtualBox 6.1: host-only adapter and the old audio flag; a guest that ignores ACPI is powered off at the deadline', async () => {
  const vb = standIn('6.1.28r147628', { VBOX_STANDIN_IGNORE_ACPI: '1' }, { network: labNet });
  try {
    await vb.provider.create(spec('db-1', '08:00:27:00:00:02', bridged));
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

/** How VirtualBox behaves for a lab: its version, the host OS it runs on, and the lab's network mode. */
const LIFECYCLES = [
  { version: '7.0.10r158379', hostOs: 'linux', mode: 'user' },
  { version: '6.1.44r156814', hostOs: 'linux', mode: 'user' },
  { version: '7.0.10r158379', hostOs: 'linux', mode: 'bridge' },
  { version: '6.1.44r156814', hostOs: 'linux', mode: 'bridge' },
  { version: '7.0.10r158379', hostOs: 'darwin', mode: 'bridge' },
] as const;

for (const c of LIFECYCLES) {
  test(`VirtualBox ${c.version.slice(0, 3)} on ${c.hostOs}, ${c.mode} networking: doctor, image build, clone, start, stop, del and env start-all of the demo run through the CLI against the stand-in`, { timeout: 180_000 }, async () => {
    const bridge = c.mode === 'bridge';
    const ns = `labvb${process.pid % 10000}${LIFECYCLES.indexOf(c)}`;
    const port = await freePort();
    const home = mkdtempSync(path.join(tmpdir(), 'lab-vbox-home-'));
    const conf = path.join(home, 'networks.conf');
    // VirtualBox's user home as a user sets it (lab's TFTP folder and the stand-in's follow it), its networks.conf,
    // the host OS VirtualBox behaves as; in a bridged lab, vboxnet interfaces made for real, in the test's namespace.
    const vb = standIn(c.version, {
      LAB_VBOXMANAGE: path.join(fixtures, 'VBoxManage'),
      VBOX_USER_HOME: home,
      LAB_VBOX_HOST_OS: c.hostOs,
      VBOX_STANDIN_NETWORKS_CONF: conf,
      LAB_VBOX_NETWORKS_CONF: conf,
      ...(bridge ? { VBOX_STANDIN_REAL_IFS: '1' } : {}),
    }, { hostOs: c.hostOs });
    // The demo without its services: the stand-in boots no real guest to deploy to.
    const { dir, cleanup } = await tempLab((s) => {
      const edited = s.replace("provider: 'qemu'", "provider: 'virtualbox'").replace('serverPort: 8077', `serverPort: ${port}`).replace(/, service: '\w+', version: '[\d.]+'/g, '');
      return bridge ? edited : userNetworking(edited);
    });
    const run = (args: string[]) => lab(['--lab', dir, ...args], bridge ? { netns: ns } : {});
    let server: { stop: () => Promise<void> } | undefined;
    try {
      if (bridge) {
        await execa('ip', ['netns', 'add', ns]);
        await execa('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      }
      // lab doctor asks the (stand-in) VBoxManage its version, and checks what VirtualBox needs here.
      const doctor = async () => JSON.parse((await run(['doctor', '--json'])).stdout) as { name: string; status: string; detail: string; fix?: string }[];
      const first = await doctor();
      assert.deepEqual(first.find((x) => x.name === 'VBoxManage'), { name: 'VBoxManage', status: 'ok', detail: `${path.join(fixtures, 'VBoxManage')}: VirtualBox ${c.version.split('r')[0]}` });
      assert.deepEqual(first.filter((x) => ['TFTP folder', 'pxelinux'].includes(x.name)).map((x) => x.status), ['ok', 'ok']);
      assert.ok(!first.some((x) => /bridge|taps/.test(`${x.name} ${x.detail} ${x.fix ?? ''}`)), 'no check of a bridge VirtualBox does not use');
      if (c === LIFECYCLES[0]) {
        const missing = await lab(['--lab', dir, 'doctor'], { env: { LAB_VBOXMANAGE: '/nonexistent/VBoxManage' } });
        assert.equal(missing.exitCode, 3);
        assert.match(missing.stdout, /^FAIL  VBoxManage +\/nonexistent\/VBoxManage: VBoxManage is not installed.*\n +fix: install VirtualBox/m);
      }
      if (bridge) {
        // 10.77.0.0/24 is outside 192.168.56.0/21: refused until networks.conf allows it, and doctor says how.
        const range = first.find((x) => x.name === 'host-only range')!;
        assert.equal(range.status, 'fail');
        assert.match(range.fix!, /add the line "\* 10\.77\.0\.0\/24" to .*networks\.conf/);
        writeFileSync(conf, '* 10.0.0.0/8 192.168.0.0/16\n');
        const again = await doctor();
        assert.equal(again.find((x) => x.name === 'host-only range')!.status, 'ok');
        assert.equal(again.find((x) => /^host-only (adapter|network)$/.test(x.name))!.status, 'warn', 'not made yet');
        assert.deepEqual(again.find((x) => x.name === 'server port'), { name: 'server port', status: 'warn', detail: `10.77.0.1 is on no interface yet: lab serve makes the virtualbox network holding it, then listens on 10.77.0.1:${port}` });
        // lab serve makes the host-only network holding the gateway, then listens on it.
        server = await serveInNs(ns, dir);
        const made = (await doctor()).find((x) => /^host-only (adapter|network)$/.test(x.name))!;
        assert.equal(made.status, 'ok', made.detail);
      }
      const build = await run(['image', 'build', 'mini']);
      assert.equal(build.exitCode, 0, build.stderr);
      const db = JSON.parse(readFileSync(path.join(dir, 'inventory', 'db.json'), 'utf8'));
      assert.equal(db.imageVms.mini.bootCount, 1);
      assert.match(db.imageVms.mini.hostKey, /^ssh-ed25519 /);
      assert.match(db.imageVms.mini.otherKeys?.join() ?? '', /^ssh-rsa AAAAB3NzaC1yc2E/, 'both keys the guest sent, pinned');
      assert.equal(db.imageVms.mini.mac, db.leases.mini.mac);
      assert.match(db.leases.mini.mac, /^08:00:27:/, 'VirtualBox MACs for a VirtualBox lab');
      if (bridge) assert.equal(db.imageVms.mini.ip, db.leases.mini.ip, 'called back from its lease on the host-only network');
      if (c === LIFECYCLES[0]) {
        // An OVA on VirtualBox is VirtualBox's own export of the stopped VM, over an existing file.
        const ova = path.join(dir, 'mini.ova');
        writeFileSync(ova, 'an older export\n');
        const exp = await run(['image', 'export', 'mini', '--format', 'ova', '--out', ova]);
        assert.equal(exp.exitCode, 0, exp.stderr);
        assert.match(exp.stdout, /^mini: exported to .*mini\.ova \(ova, [\d.]+ MiB\)$/m);
        const call = vb.calls().find((a) => a[0] === 'export')!;
        assert.deepEqual([call.slice(2, 3), call.slice(4)], [['--output'], ['--ovf10', '--manifest', '--vsys', '0', '--vmname', 'mini', '--description', `Image mini of ${dir}, exported by lab`]]);
        assert.equal(path.basename(call[3]!), 'mini.ova', 'VirtualBox names the files inside after the OVA');
        assert.deepEqual((await execa('tar', ['tf', ova])).stdout.split('\n'), ['mini.ovf', 'mini-disk001.vmdk', 'mini.mf']);
        assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith('.lab-ova-')), [], 'nothing left beside it');
      }
      assert.equal((await run(['image', 'clone', 'mini', 'demo-worker-2'])).exitCode, 0);
      assert.equal((await run(['image', 'start', 'demo-worker-2'])).exitCode, 0);
      const list = JSON.parse((await run(['image', 'list', '--json'])).stdout) as { name: string; state: string; vm: string }[];
      assert.deepEqual(list.find((r) => r.name === 'mini'), { ...list.find((r) => r.name === 'mini')!, state: 'installed', vm: 'stopped' });
      assert.match((await run(['image', 'stop', 'demo-worker-2'])).stdout, /powered off/);
      assert.equal((await run(['image', 'del', 'demo-worker-2', '--force'])).exitCode, 0);
      if (c === LIFECYCLES[0]) {
        // A VM VirtualBox knows under this lab's name and lab does not: listed with the fix, and deleted by it.
        assert.equal((await run(['image', 'clone', 'mini', 'demo-worker-2'])).exitCode, 0);
        rmSync(path.join(dir, 'inventory', 'vbox', 'demo-worker-2'), { recursive: true });
        const strays = (JSON.parse((await run(['image', 'list', '--json'])).stdout) as { name: string; state: string; reason?: string }[]).filter((r) => r.state === 'stray');
        assert.deepEqual(strays, [{ name: 'demo-worker-2', state: 'stray', vm: 'unknown to lab', reason: 'the hypervisor has it, lab has no record: lab image del demo-worker-2 --force' }]);
        assert.equal((await run(['image', 'del', 'demo-worker-2', '--force'])).exitCode, 0);
        assert.ok(!Object.values(vb.state().vms).some((v) => v.name === 'lab-demo-worker-2'));
      }

      // The demo environment: a balancer and two workers cloned from mini, booted, each calling back as itself.
      const start = await run(['env', 'start-all', 'demo', '--json']);
      assert.equal(start.exitCode, 0, start.stderr);
      const report = JSON.parse(start.stdout) as { started: { host: string; outcome: string }[] };
      assert.deepEqual(report.started.map((h) => [h.host, h.outcome]), [['demo-lb-1', 'up'], ['demo-worker-1', 'up'], ['demo-worker-2', 'up']]);
      const hosts = (JSON.parse(readFileSync(path.join(dir, 'inventory', 'db.json'), 'utf8')) as InventoryData).hosts;
      const keys = ['demo-lb-1', 'demo-worker-1', 'demo-worker-2'].map((h) => hosts[h]!.hostKey);
      assert.equal(new Set([...keys, db.imageVms.mini.hostKey]).size, 4, 'each clone made its own host key');
      // Three clones of one image at once took its base snapshot once.
      assert.equal(vb.calls().filter((x) => x[0] === 'snapshot').length, 1);
      // Named per lab, grouped under it in VirtualBox.
      assert.deepEqual(Object.values(vb.state().vms).map((v) => [v.name, v.groups]).sort(), [['lab-demo-lb-1', '/lab'], ['lab-demo-worker-1', '/lab'], ['lab-demo-worker-2', '/lab'], ['lab-mini', '/lab']]);
      const stop = await run(['env', 'stop', 'demo', '--json']);
      assert.equal(stop.exitCode, 0, stop.stderr);
      for (const vm of ['demo-lb-1', 'demo-worker-1', 'demo-worker-2', 'mini']) assert.equal((await run(['image', 'del', vm, '--force'])).exitCode, 0);
      assert.deepEqual(vb.state().vms, {});
    } finally {
      await server?.stop();
      if (bridge) await execa('ip', ['netns', 'del', ns], { reject: false });
      cleanup();
      vb.done();
      rmSync(home, { recursive: true, force: true });
    }
  });
}

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
    assert.equal(readFileSync(path.join(vb.dir, 'TFTP', 'test-c.pxe'), 'utf8'), 'pxelinux');
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

test('host-only networking as VirtualBox does it on Linux: lab makes the vboxnet adapter holding the gateway once and reuses it, E_ACCESSDENIED outside the allowed ranges says how to allow them, a VM whose adapter is gone fails at startvm', async () => {
  for (const version of ['6.1.44r156814', '7.0.10r158379']) {
    const vb = standIn(version, {}, { network: labNet });
    try {
      await vb.provider.create(spec('lb-1', '08:00:27:00:00:03', bridged));
      await vb.provider.create(spec('worker-1', '08:00:27:00:00:04', bridged));
      // On Linux host-only interfaces, on 7.x too (host-only networks are macOS's); one made, then found.
      assert.deepEqual(vb.calls().filter((c) => c[0] === 'hostonlyif' || c[0] === 'hostonlynet'), [['hostonlyif', 'create'], ['hostonlyif', 'ipconfig', 'vboxnet0', '--ip', '192.168.56.1', '--netmask', '255.255.255.0']]);
      assert.deepEqual(vb.state().hostonlyifs.map((i) => [i.name, i.ip]), [['vboxnet0', '192.168.56.1']]);
      assert.deepEqual(vb.said, ['virtualbox: made host-only interface vboxnet0 holding 192.168.56.1/24']);
      const modify = vb.calls().filter((c) => c[0] === 'modifyvm').at(-1)!;
      const value = (flag: string) => modify[modify.indexOf(flag) + 1];
      assert.deepEqual([value('--nic1'), value('--hostonlyadapter1'), value('--nic2')], ['hostonly', 'vboxnet0', 'nat']);
      // The NAT NIC boots from the network (it alone has TFTP), with a MAC of its own.
      assert.deepEqual([value('--nicbootprio2'), value('--macaddress2')], ['1', '0A0027000004']);
      await vb.provider.start('worker-1', { boot: { kind: 'disk' } });
      await vb.provider.stop('worker-1', 1000);
      // An adapter removed by hand: the VM fails at startvm as VirtualBox's does.
      await vb.provider['driver'].exec(['hostonlyif', 'remove', 'vboxnet0']);
      await assert.rejects(vb.provider.start('worker-1', { boot: { kind: 'disk' } }), /Nonexistent host networking interface, name 'vboxnet0' \(VERR_INTERNAL_ERROR\)/);
    } finally {
      vb.done();
    }
  }

  // Since 6.1.28 an address outside 192.168.56.0/21 is refused unless networks.conf allows it: the error says how.
  const outside: LabNetwork = { lab: 'test', cidr: '10.77.0.0/24', gateway: '10.77.0.1' };
  const vb = standIn('7.0.10r158379', {}, { network: outside });
  try {
    await assert.rejects(vb.provider.create(spec('lb-1', '08:00:27:00:00:03', bridged)), (e: Error & { hint?: string }) => {
      assert.match(e.message, /^VirtualBox refused the lab gateway 10\.77\.0\.1 on a host-only interface: 10\.77\.0\.0\/24 is outside the host-only ranges VirtualBox allows \(192\.168\.56\.0\/21/);
      assert.match(e.hint!, /add the line "\* 10\.77\.0\.0\/24" to \/etc\/vbox\/networks\.conf/);
      return true;
    });
    assert.deepEqual(vb.state().hostonlyifs, [], 'the interface it could not configure is removed again');
    const conf = path.join(vb.dir, 'networks.conf');
    writeFileSync(conf, '* 10.0.0.0/8 192.168.0.0/16\n');
    const allowed = standIn('7.0.10r158379', { VBOX_STANDIN_NETWORKS_CONF: conf }, { network: outside });
    try {
      await allowed.provider.create(spec('lb-1', '08:00:27:00:00:03', bridged));
      assert.deepEqual(allowed.state().hostonlyifs.map((i) => i.ip), ['10.77.0.1']);
    } finally {
      allowed.done();
    }
  } finally {
    vb.done();
  }
});

test('host-only networking as VirtualBox 7 does it on macOS: a host-only network named after the lab, made once', async () => {
  const vb = standIn('7.0.10r158379', {}, { network: labNet, hostOs: 'darwin' });
  try {
    await vb.provider.create(spec('lb-1', '08:00:27:00:00:03', bridged));
    await vb.provider.create(spec('worker-1', '08:00:27:00:00:04', bridged));
    assert.deepEqual(vb.calls().filter((c) => c[0] === 'hostonlyif' || c[0] === 'hostonlynet'), [['hostonlynet', 'add', '--name', 'lab-test', '--netmask', '255.255.255.0', '--lower-ip', '192.168.56.0', '--upper-ip', '192.168.56.0', '--enable']]);
    const modify = vb.calls().filter((c) => c[0] === 'modifyvm').at(-1)!;
    assert.deepEqual([modify[modify.indexOf('--nic1') + 1], modify[modify.indexOf('--host-only-net1') + 1]], ['hostonlynet', 'lab-test']);
    await vb.provider.start('worker-1', { boot: { kind: 'disk' } });
    // hostonlyif does not exist there: lab never asks for it.
    await assert.rejects(vb.provider['driver'].exec(['hostonlyif', 'create']), /not supported on this host/);
  } finally {
    vb.done();
  }
});

test('an install that ends with a reboot installs once on VirtualBox: after its callback the PXE entry boots the installed system, which lab then powers off', { timeout: 120_000 }, async () => {
  const port = await freePort();
  const home = mkdtempSync(path.join(tmpdir(), 'lab-vbox-home-'));
  const vb = standIn('7.0.10r158379', { LAB_VBOXMANAGE: path.join(fixtures, 'VBoxManage'), VBOX_USER_HOME: home });
  // As CentOS's kickstart ends (reboot --eject): the installer reboots, and net comes first in the boot order.
  const { dir, cleanup } = await tempLab((s) =>
    userNetworking(s)
      .replace("provider: 'qemu'", "provider: 'virtualbox'")
      .replace('serverPort: 8077', `serverPort: ${port}`)
      .replace('    mini: {', "    rebooter: { distro: 'mini', kickstart: 'kickstart/rebooter.cfg', memory: 256, disk: 64 },\n    mini: {"),
  );
  try {
    writeFileSync(path.join(dir, 'kickstart', 'rebooter.cfg'), readFileSync(path.join(dir, 'kickstart', 'mini-ks.cfg'), 'utf8').replace(/^poweroff$/m, 'reboot'));
    const build = await lab(['--lab', dir, 'image', 'build', 'rebooter']);
    assert.equal(build.exitCode, 0, build.stderr);
    const console = readFileSync(path.join(dir, 'inventory', 'vbox', 'rebooter', 'console.log'), 'utf8');
    assert.equal(console.match(/installing from/g)?.length, 1, console);
    assert.match(console, /rebooting\n[^]*booting rebooter/, 'the reboot booted the installed system');
    const db = readJsonFile(path.join(dir, 'inventory', 'db.json'));
    assert.equal(db.imageVms.rebooter!.bootCount, 2, 'the install, then the installed system');
    assert.equal(db.images.rebooter!.state, 'installed');
    const list = JSON.parse((await lab(['--lab', dir, 'image', 'list', '--json'])).stdout) as { name: string; vm: string }[];
    assert.equal(list.find((i) => i.name === 'rebooter')!.vm, 'stopped', 'an image build ends powered off');
    await lab(['--lab', dir, 'image', 'del', 'rebooter', '--force']);
  } finally {
    cleanup();
    vb.done();
    rmSync(home, { recursive: true, force: true });
  }
});

function readJsonFile(file: string): InventoryData {
  return JSON.parse(readFileSync(file, 'utf8')) as InventoryData;
}

test('failures leave nothing behind, and VirtualBox is the one truth: a clone failing after clonevm is unregistered, a VM removed in VirtualBox can be built again, a stray VirtualBox knows is listed and deleted', async () => {
  const vb = standIn('7.0.10r158379');
  try {
    await vb.provider.create(spec('mini', '08:00:27:12:34:56', { mode: 'user', sshPort: 2222 }));
    // The clone's own settings are refused after clonevm registered it (a forward the stand-in rejects): undone in step.
    await assert.rejects(vb.provider.clone('mini', spec('bad', '08:00:27:00:00:07', { mode: 'user', sshPort: Number.NaN })), /invalid value for --natpf1/);
    assert.deepEqual(Object.values(vb.state().vms).map((v) => v.name), ['test-mini']);
    assert.deepEqual(await vb.provider.strays(), []);
    await vb.provider.clone('mini', spec('bad', '08:00:27:00:00:07', { mode: 'user', sshPort: 2224 }));

    // lab's folder gone (a crash before it was written, a folder removed by hand): a stray, listed, refused as a name, deleted.
    rmSync(path.join(vb.dir, 'vms', 'bad'), { recursive: true });
    assert.deepEqual(await vb.provider.strays(), ['bad']);
    await assert.rejects(vb.provider.clone('mini', spec('bad', '08:00:27:00:00:07', { mode: 'user', sshPort: 2224 })), /VirtualBox has a VM test-bad of this lab that lab has no record of/);
    await vb.provider.delete('bad');
    assert.deepEqual(await vb.provider.strays(), []);
    assert.deepEqual(Object.values(vb.state().vms).map((v) => v.name), ['test-mini']);

    // Removed in VirtualBox's GUI: missing for lab too, and built again without a "delete it first".
    const uuid = Object.keys(vb.state().vms)[0]!;
    await vb.provider['driver'].unregisterVm(uuid);
    assert.equal((await vb.provider.info('mini')).state, 'missing');
    await vb.provider.create(spec('mini', '08:00:27:12:34:56', { mode: 'user', sshPort: 2222 }));
    assert.equal((await vb.provider.info('mini')).state, 'stopped');
  } finally {
    vb.done();
  }
});

test('several labs, one VirtualBox: VM names carry the lab\'s, each lab lists only its own, and a second lab of the same name is told to take a name of its own, never handed the first one\'s VMs', async () => {
  const vb = standIn('7.0.10r158379');
  try {
    const driver = new VBoxDriver(path.join(fixtures, 'VBoxManage'), { tries: 5, delayMs: 10 });
    const labOf = (lab: string, folder: string) => new VirtualBoxProvider(path.join(vb.dir, folder), driver, { lab, tftpRoot: path.join(vb.dir, 'TFTP'), hostOs: 'linux' });
    const [alpha, beta, alphaAgain] = [labOf('alpha', 'a'), labOf('beta', 'b'), labOf('alpha', 'c')];
    await alpha.create(spec('mini', '08:00:27:00:00:0a', { mode: 'user', sshPort: 2301 }));
    await beta.create(spec('mini', '08:00:27:00:00:0b', { mode: 'user', sshPort: 2302 }));
    assert.deepEqual(Object.values(vb.state().vms).map((v) => [v.name, v.groups]), [['alpha-mini', '/alpha'], ['beta-mini', '/beta']]);
    assert.deepEqual((await alpha.list()).map((v) => v.name), ['mini']);
    assert.deepEqual((await beta.list()).map((v) => v.name), ['mini']);
    await assert.rejects(alphaAgain.create(spec('mini', '08:00:27:00:00:0c', { mode: 'user', sshPort: 2303 })), /VirtualBox has a VM alpha-mini of another lab named "alpha" \(its files: .*\/a\/alpha-mini\/alpha-mini\.vbox\)/);
    assert.deepEqual(await alphaAgain.strays(), [], 'the other lab\'s VM is no stray of this one');
    await assert.rejects(alphaAgain.delete('mini'), /no VM "mini"/);
    assert.equal(Object.keys(vb.state().vms).length, 2, 'nothing of the other lab deleted');
  } finally {
    vb.done();
  }
});
