// Three mini hosts from one image on one libvirt hypervisor: `lab env
// start-all` (provider libvirt, no services, each host up when it has called
// back) against `vagrant up --parallel` (Debian's vagrant and vagrant-libvirt,
// a box made of the same installed mini disk, each machine up when Vagrant's
// SSH reaches it), interleaved, median of RUNS (default 5). The hypervisor is
// real libvirtd in its own namespaces (test/hypervisors.ts); lab reaches it
// over qemu+ssh as a user's lab would, Vagrant runs on it (qemu:///system),
// as ../shared/notes/peers-side-by-side-on-this-machine.md tells.
// npm run bench:vagrant (root; apt-get install vagrant vagrant-libvirt)
import { execa } from 'execa';
import { chmodSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import path from 'node:path';
import { lab, tempLab } from '../test/helpers.js';
import { makeLabBridge } from '../test/netns.js';
import { makeHypervisors, onHypervisors } from '../test/hypervisors.js';
import { median, timed } from './stats.js';

const RUNS = Number(process.env.RUNS ?? 5);
const ns = `labbg${process.pid % 100000}`;
const trio = (s: string) =>
  s.replace(
    '  environments: {\n',
    "  environments: {\n    trio: {\n      groups: [{ role: 'v', image: 'mini', count: 3 }],\n    },\n",
  );
const hosts = ['trio-v-1', 'trio-v-2', 'trio-v-3'];

await makeLabBridge(ns);
const made = await makeHypervisors(ns, 'labnet', 1);
const { dir, cleanup } = await tempLab((s) => trio(onHypervisors(made.hvs, 4096)(s)));
const inNs = (args: string[]) => lab(['--lab', dir, ...args], { netns: ns, timeoutMs: 900_000 });
const work = path.join(dir, 'vagrant');
// Vagrant runs on the hypervisor: in its network and mount namespaces (its libvirtd's socket is in its own /run).
const hvPid = readFileSync(path.join(path.dirname(made.key), readdirSync(path.dirname(made.key)).find((f) => f.startsWith('lhv'))!, 'pids'), 'utf8').split('\n')[0]!;
const vagrant = (args: string[]) =>
  execa('nsenter', ['-t', hvPid, '-m', '-n', `--wd=${path.join(work, 'project')}`, '--', 'vagrant', ...args], { cwd: path.join(work, 'project'), env: { VAGRANT_HOME: path.join(work, 'home'), VAGRANT_DEFAULT_PROVIDER: 'libvirt' }, timeout: 900_000 });

try {
  const built = await inNs(['image', 'build', 'mini']);
  if (built.exitCode !== 0) throw new Error(built.stderr);
  // A first start-all (not measured) takes lab's copy of the image's disk: the box is made of that file.
  const warm = await inNs(['env', 'start-all', 'trio']);
  if (warm.exitCode !== 0) throw new Error(warm.stderr);
  const base = path.join(dir, 'inventory', 'vms', 'mini', readdirSync(path.join(dir, 'inventory', 'vms', 'mini')).find((f) => /^base-\d+\.qcow2$/.test(f))!);
  const guest = JSON.parse(readFileSync(path.join(dir, 'inventory', 'vms', 'trio-v-1', 'libvirt.json'), 'utf8')) as { spec: { diskBoot: { kernel: string; initrd: string } } };
  // Vagrant's domains run QEMU as libvirt-qemu: the kernel and initrd it boots must be readable to it.
  chmodSync(dir, 0o711);
  mkdirSync(path.join(work, 'box'), { recursive: true, mode: 0o755 });
  mkdirSync(path.join(work, 'project'), { recursive: true });
  // Where the hypervisor sees them (its /root is its own).
  const [kernel, initrd] = [path.join(work, 'vmlinuz'), path.join(work, 'initrd.img')];
  await execa('cp', [guest.spec.diskBoot.kernel, kernel]);
  await execa('cp', [guest.spec.diskBoot.initrd, initrd]);
  await execa('cp', [base, path.join(work, 'box', 'box.img')]);
  writeFileSync(path.join(work, 'box', 'metadata.json'), JSON.stringify({ provider: 'libvirt', format: 'qcow2', virtual_size: 1 }));
  writeFileSync(
    path.join(work, 'box', 'Vagrantfile'),
    `Vagrant.configure("2") do |config|\n  config.vm.provider :libvirt do |lv|\n    lv.driver = "qemu"\n    lv.kernel = "${kernel}"\n    lv.initrd = "${initrd}"\n  end\nend\n`,
  );
  await execa('tar', ['-C', path.join(work, 'box'), '-czf', path.join(work, 'mini.box'), 'box.img', 'metadata.json', 'Vagrantfile']);
  const machines = [1, 2, 3]
    .map(
      (n) => `  config.vm.define "v${n}" do |m|
    m.vm.network :public_network, dev: "br0", mode: "bridge", type: "bridge", ip: "10.77.0.${200 + n}", auto_config: false
    m.vm.provider :libvirt do |lv|
      lv.cmd_line = "console=ttyS0 lab.host=v${n} ip=10.77.0.${200 + n}::10.77.0.1:255.255.255.0:v${n}:eth0:none"
    end
  end`,
    )
    .join('\n');
  writeFileSync(
    path.join(work, 'project', 'Vagrantfile'),
    `Vagrant.configure("2") do |config|
  config.vm.box = "lab-mini"
  # Vagrant's detection does not know busybox; it is a Linux.
  config.vm.guest = :linux
  config.vm.synced_folder ".", "/vagrant", disabled: true
  config.vm.allow_fstab_modification = false
  config.vm.allow_hosts_modification = false
  config.ssh.username = "root"
  config.ssh.private_key_path = "${path.join(dir, 'inventory', 'lab_ed25519')}"
  config.ssh.insert_key = false
  config.ssh.shell = "sh"
  config.ssh.sudo_command = "%c"
  config.vm.provider :libvirt do |lv|
    lv.uri = "qemu:///system"
    lv.storage_pool_name = "lab"
    lv.mgmt_attach = false
    lv.memory = 256
    lv.cpus = 1
    lv.cpu_mode = "custom"
    lv.cpu_model = "qemu64"
    lv.graphics_type = "none"
    lv.video_type = "none"
  end
${machines}
end
`,
  );
  await vagrant(['box', 'add', '--force', '--name', 'lab-mini', path.join(work, 'mini.box')]);
  await inNs(['env', 'stop', 'trio', '--deadline', '0']);

  const results = { lab: [] as number[], vagrant: [] as number[] };
  for (let i = 0; i < RUNS; i++) {
    results.lab.push(
      await timed(async () => {
        const r = await inNs(['env', 'start-all', 'trio']);
        if (r.exitCode !== 0) throw new Error(r.stderr);
      }),
    );
    await inNs(['env', 'stop', 'trio', '--deadline', '0']);
    for (const h of hosts) await inNs(['image', 'del', h, '--force']);
    await execa('ip', ['-n', ns, 'neigh', 'flush', 'all'], { reject: false });
    // Vagrant (fog-libvirt) finds a bridged guest's address only in the hypervisor's ARP table, which a guest
    // with a static address never fills by itself: pinged from the hypervisor meanwhile, in Vagrant's favour.
    const pingers = [1, 2, 3].map((n) => execa('nsenter', ['-t', hvPid, '-n', '--', 'ping', '-q', '-i', '0.5', '-w', '300', `10.77.0.${200 + n}`], { reject: false }));
    try {
      results.vagrant.push(await timed(async () => void (await vagrant(['up', '--parallel']))));
    } finally {
      for (const p of pingers) p.kill();
      await Promise.all(pingers);
    }
    const check = await vagrant(['ssh', 'v1', '-c', 'hostname']);
    if (!String(check.stdout).includes('v1')) throw new Error(`vagrant ssh v1: ${check.stdout}`);
    await vagrant(['destroy', '-f']);
  }
  console.log(`three mini hosts from one image on one libvirt hypervisor (libvirt ${(await execa('virsh', ['--version'])).stdout}, QEMU TCG, ${cpus().length} cores), median of ${RUNS}, interleaved`);
  for (const [name, runs] of Object.entries(results)) console.log(`${name.padEnd(8)} ${median(runs).toFixed(1).padStart(6)} s   (runs: ${runs.map((r) => r.toFixed(1)).join(', ')} s)`);
  console.log(`lab / vagrant: ${(median(results.lab) / median(results.vagrant)).toFixed(2)}x (goal < 1)`);
} finally {
  await vagrant(['destroy', '-f']).catch(() => undefined);
  await inNs(['env', 'stop', 'trio', '--deadline', '0']).catch(() => undefined);
  for (const h of [...hosts, 'mini']) await inNs(['image', 'del', h, '--force']).catch(() => undefined);
  await made.cleanup();
  await execa('ip', ['netns', 'del', ns], { reject: false });
  cleanup();
}
