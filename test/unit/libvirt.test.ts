import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { place, type Room } from '../../src/providers/libvirt/placement.js';
import { domainXml, type Domain } from '../../src/providers/libvirt/domain.js';
import { connectFailure, virshQuote, Virsh, HypervisorDown } from '../../src/providers/libvirt/virsh.js';
import { connectUri, uriHost } from '../../src/providers/libvirt/uri.js';
import { migrationPathFailure } from '../../src/providers/libvirt/provider.js';
import { lab, tempLab } from '../helpers.js';
import { ToolError } from '../../src/errors.js';

const room = (name: string, usedMemoryMiB: number, extra: Partial<Room> = {}): Room => ({ name, cpus: 4, memoryMiB: 1024, usedCpus: 0, usedMemoryMiB, ...extra });
const want = { vm: 'w1', cpus: 1, memoryMiB: 256, placement: 'spread' as const };

test('placement: spread takes the most free memory, pack the fullest with room, a named hypervisor or a clear refusal', () => {
  assert.equal(place([room('hv1', 512), room('hv2', 256)], want), 'hv2');
  assert.equal(place([room('hv1', 256), room('hv2', 256)], want), 'hv1', 'a tie goes by free CPUs, then name');
  assert.equal(place([room('hv1', 256), room('hv2', 256, { usedCpus: 0, cpus: 8 })], want), 'hv2');
  assert.equal(place([room('hv1', 512), room('hv2', 256)], { ...want, placement: 'pack' }), 'hv1');
  // A group's hosts apart first: one hypervisor going away takes as few of them as it can.
  assert.equal(place([room('hv1', 256), room('hv2', 512, { groups: { 'demo/lb': 1 } }), room('hv3', 0, { groups: { 'demo/worker': 1 } })], { ...want, group: 'demo/worker' }), 'hv1');
  assert.equal(place([room('hv1', 900), room('hv2', 256)], { ...want, placement: 'pack' }), 'hv2', 'pack skips a hypervisor without room');
  assert.equal(place([room('hv1', 0, { unavailable: 'does not answer (no route)' }), room('hv2', 768)], want), 'hv2', 'an unreachable one takes nothing');
  assert.equal(place([room('hv1', 0), room('hv2', 768)], { ...want, hypervisor: 'hv2' }), 'hv2');
  assert.throws(() => place([room('hv1', 900), room('hv2', 0, { unavailable: 'is drained (lab hypervisor undrain)' })], want), /w1: no hypervisor has room for 1 CPUs and 256 MiB: hv1 4 CPUs and 124 MiB free; hv2 is drained/);
  assert.throws(() => place([room('hv1', 0, { unavailable: 'does not answer (x)' })], { ...want, hypervisor: 'hv1' }), /its group runs on hypervisor hv1, which does not answer/);
  assert.throws(() => place([room('hv1', 1000)], { ...want, hypervisor: 'hv1' }), /hypervisor hv1 has no room/);
});

const domain: Domain = {
  name: 'lab-w1',
  uuid: '6b0b7c5e-0000-4000-8000-000000000001',
  type: 'qemu',
  memoryMiB: 256,
  cpus: 1,
  kernel: { kernel: '/p/k', initrd: '/p/i', cmdline: "console=ttyS0 lab.host=w1 x='<&>\"'" },
  onReboot: 'destroy',
  disks: [{ path: '/p/lab-w1.qcow2', format: 'qcow2', device: 'disk' }],
  nic: { bridge: 'br0', mac: '52:54:00:12:34:56' },
  console: '/p/lab-w1.console',
  fwcfg: { 'opt/lab/token': '/p/lab-w1.token&' },
  lab: 'lab',
};

test('domain XML: every value escaped, direct kernel boot, the NIC on the bridge with the lease MAC, the console in the pool, the token in fw_cfg as a file (inline, libvirt would put it on QEMU\'s command line)', () => {
  const xml = domainXml(domain);
  assert.match(xml, /<domain type='qemu'>/);
  assert.match(xml, /<cmdline>console=ttyS0 lab\.host=w1 x=&apos;&lt;&amp;&gt;&quot;&apos;<\/cmdline>/);
  assert.match(xml, /<interface type='bridge'><source bridge='br0'\/><mac address='52:54:00:12:34:56'\/>/);
  assert.match(xml, /<serial type='pty'><log file='\/p\/lab-w1\.console' append='on'\/>/);
  assert.match(xml, /<entry name='opt\/lab\/token' file='\/p\/lab-w1\.token&amp;'\/>/);
  assert.match(xml, /<on_reboot>destroy<\/on_reboot>/);
  assert.doesNotMatch(domainXml({ ...domain, kernel: undefined }), /<kernel>/);
  assert.throws(() => domainXml({ ...domain, name: 'a\x01b' }), /control character/);
  // A name cannot close an attribute and add one.
  assert.match(domainXml({ ...domain, nic: { ...domain.nic, bridge: "br0'/><x a='" } }), /<source bridge='br0&apos;\/&gt;&lt;x a=&apos;'\/>/);
});

test("virsh's shell: arguments quoted, line breaks refused; ssh's refusals in one line", () => {
  assert.equal(virshQuote('a b"c\\d'), '"a b\\"c\\\\d"');
  assert.throws(() => virshQuote('a\nb'), /line break/);
  const changed = [
    'error: failed to connect to the hypervisor',
    'error: Cannot recv data: @@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\r',
    '@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\r',
    'Offending ED25519 key in /root/.ssh/known_hosts:3\r',
  ].join('\n');
  assert.equal(connectFailure(changed), 'its SSH host key is not the one known before (ssh refused it as a possible man-in-the-middle); if it was reinstalled, remove line /root/.ssh/known_hosts 3');
  assert.equal(
    connectFailure('error: failed to connect to the hypervisor\nerror: Cannot recv data: ssh: connect to host 10.77.0.19 port 22: No route to host: Connection reset by peer\n'),
    'ssh: connect to host 10.77.0.19 port 22: No route to host',
  );
});

test('URIs: lab ssh wrapper added to qemu+ssh only when the URI names no command; the migration address is the URI host', () => {
  assert.equal(connectUri('qemu+ssh://root@hv1/system', '/l/ssh'), 'qemu+ssh://root@hv1/system?command=%2Fl%2Fssh');
  assert.equal(connectUri('qemu+ssh://root@hv1/system?keyfile=/k', '/l/ssh'), 'qemu+ssh://root@hv1/system?keyfile=/k&command=%2Fl%2Fssh');
  assert.equal(connectUri('qemu+ssh://hv1/system?command=/usr/bin/ssh', '/l/ssh'), 'qemu+ssh://hv1/system?command=/usr/bin/ssh');
  assert.equal(connectUri('qemu:///system', '/l/ssh'), 'qemu:///system');
  assert.equal(uriHost('qemu+ssh://root@10.77.0.12:2222/system?x=1'), '10.77.0.12');
  assert.equal(uriHost('qemu+ssh://hv2/system'), 'hv2');
  assert.equal(uriHost('qemu:///system'), undefined);
});

test("a migration whose QEMUs cannot connect is said as the missing path and the ports to open; other failures are left as virsh says them", () => {
  // As virsh said it in a CI run (the disk stream), and as QEMU words a refused memory stream.
  const disk = "hypervisor hv2: internal error: unable to execute QEMU command 'blockdev-add': Failed to connect to '10.77.0.11:49153': Connection timed out";
  assert.equal(migrationPathFailure(disk, 'hv2', 'hv1'), "live migration hv2 -> hv1: hv2 cannot reach 10.77.0.11:49153 (Connection timed out); libvirt's migration ports (49152-49215/tcp) on hv1 must be open to hv2");
  assert.match(migrationPathFailure("operation failed: Failed to connect to '10.77.0.11:49152': Connection refused", 'hv2', 'hv1') ?? '', /cannot reach 10\.77\.0\.11:49152 \(Connection refused\)/);
  assert.equal(migrationPathFailure('hypervisor hv2: operation failed: guest CPU doesn\'t match specification', 'hv2', 'hv1'), undefined);
});

/** A stand-in for virsh's interactive shell, as the real one answers (prompt, echoed line, error lines on the same stream). */
function fakeVirsh(dir: string, script: string): Record<string, string> {
  const bin = path.join(dir, 'virsh');
  writeFileSync(bin, `#!/bin/sh\n${script}\n`);
  chmodSync(bin, 0o755);
  return { PATH: `${dir}:${process.env.PATH}` };
}

test('one virsh shell per hypervisor: outputs split at the markers, errors per command, a shell that ends or hangs fails its calls as the hypervisor down', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'lab-virsh-'));
  try {
    // Answers like virsh: prompt, the echoed line, the output; "error:" lines on the same stream.
    const env = fakeVirsh(
      dir,
      `while IFS= read -r line; do printf 'virsh # %s\\n' "$line"; case "$line" in
  echo*) printf '%s' "\${line#echo }";;
  *domstate*missing*) echo 'error: failed to get domain'; echo "error: Domain not found";;
  *domstate*) echo 'running'; echo;;
  *hang*) sleep 30;;
  *quit*) exit 0;;
esac; done`,
    );
    const v = new Virsh({ name: 'hv1', uri: 'test:///x', env, timeoutMs: 1500 });
    assert.equal(await v.call(['domstate', 'a']), 'running');
    await assert.rejects(v.call(['domstate', 'missing']), (e: unknown) => e instanceof ToolError && /hypervisor hv1: domstate missing: failed to get domain \/ Domain not found/.test(e.message));
    assert.equal(await v.tryCall(['domstate', 'missing']), undefined);
    assert.equal(await v.call(['domstate', 'b']), 'running', 'the shell goes on after an error');
    assert.equal(v.calls, 4);
    await assert.rejects(v.call(['hang']), (e: unknown) => e instanceof HypervisorDown && /no answer in 2 s/.test(e.message));
    // Refused at once for a while: a monitor cycle does not wait once per VM.
    const t = Date.now();
    await assert.rejects(v.call(['domstate', 'c']), HypervisorDown);
    assert.ok(Date.now() - t < 500);
    v.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('environments.ts: hypervisors only with provider libvirt, a bridged network, groups naming declared ones', async () => {
  const libvirt = (s: string) => s.replace("provider: 'qemu',", "provider: 'libvirt',\n  hypervisors: { hv1: { uri: 'qemu+ssh://root@10.77.0.11/system', bridge: 'br0', cpus: 4, memory: 2048 } },");
  const cases: [(s: string) => string, RegExp][] = [
    [(s) => s.replace("provider: 'qemu',", "provider: 'qemu',\n  hypervisors: { hv1: { uri: 'qemu:///system', bridge: 'br0', cpus: 1, memory: 512 } },"), /environments\.ts: hypervisors: hypervisors are for provider 'libvirt' \(provider is 'qemu'\)/],
    [(s) => libvirt(s).replace("mode: 'bridge'", "mode: 'user'"), /environments\.ts: network\.mode: provider 'libvirt' puts guests on each hypervisor's bridge/],
    [(s) => libvirt(s).replace("{ role: 'lb', image: 'mini', count: 1,", "{ role: 'lb', image: 'mini', count: 1, hypervisor: 'hv7',"), /environments\.ts: environments\.demo\.groups\[0\]\.hypervisor: no hypervisor "hv7"; hypervisors are: hv1/],
    [(s) => libvirt(s).replace("uri: 'qemu+ssh://root@10.77.0.11/system'", "uri: 'qemu+ssh://hv1/system; rm -rf /'"), /environments\.ts: hypervisors\.hv1\.uri: expected a libvirt URI/],
    [(s) => libvirt(s).replace("placement: 'spread'", '').replace("{ role: 'worker', image: 'mini',", "{ role: 'worker', image: 'mini', placement: 'round',"), /environments\.ts: environments\.demo\.groups\[1\]\.placement: /],
  ];
  // One scaffold, its environments.ts rewritten per case: a lab init per case would double the subprocesses.
  const { dir, cleanup } = await tempLab();
  const file = path.join(dir, 'environments.ts');
  const scaffold = readFileSync(file, 'utf8');
  try {
    for (const [edit, expected] of cases) {
      const edited = edit(scaffold);
      assert.notEqual(edited, scaffold, `the edit for ${expected} changed nothing: the scaffold no longer has what it replaces`);
      writeFileSync(file, edited);
      const r = await lab(['--lab', dir, 'hosts', 'list']);
      assert.equal(r.exitCode, 2, r.stdout + r.stderr);
      assert.match(r.stderr, expected);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }
  } finally {
    cleanup();
  }
});
