// The mini image built from the same rendered kickstart, two ways, wall
// time, interleaved, median of RUNS (default 5):
// - `lab image build mini --rebuild` on a user-networking lab (QEMU, TCG),
//   up to the image VM's callback and its power-off;
// - Packer (Debian's 1.6, QEMU builder built in) as
//   ../shared/notes/peers-side-by-side-on-this-machine.md tells: the
//   kickstart served from `http_directory`, the mini installer's kernel and
//   initrd booted with `qemuargs`, `communicator: none` (Packer waits for the
//   installer to power off), a blank 64M qcow2 as the disk image.
// Both boot the same kernel, initrd and kernel arguments (the mini distro's
// bootSpec), 1 CPU and 256 MiB, TCG. npm run bench:packer (root; installs
// Debian's packer if missing)
import { execa } from 'execa';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import path from 'node:path';
import { lab, tempLab, userNetworking } from '../test/helpers.js';
import { miniGuest } from '../src/distros/mini/guest.js';
import { DISTROS } from '../src/distros/index.js';
import { median, timed } from './stats.js';

const RUNS = Number(process.env.RUNS ?? 5);

if ((await execa('sh', ['-c', 'command -v packer'], { reject: false })).exitCode !== 0) {
  await execa('apt-get', ['install', '-y', '-qq', 'packer'], { stdio: 'inherit', env: { DEBIAN_FRONTEND: 'noninteractive' } });
}
const packerVersion = (await execa('packer', ['version'])).stdout.split('\n')[0]!.trim();

const { dir, cleanup } = await tempLab(userNetworking);
try {
  const guest = await miniGuest(() => undefined);
  const work = path.join(dir, 'packer');
  const http = path.join(work, 'http');
  mkdirSync(http, { recursive: true });
  // The kickstart lab serves the image VM, as rendered for it: Packer's HTTP server hands out the same text.
  const ks = await lab(['kickstart', 'mini', '--lab', dir]);
  if (ks.exitCode !== 0) throw new Error(`lab kickstart mini: ${ks.stderr}`);
  writeFileSync(path.join(http, 'mini-ks.cfg'), ks.stdout);
  const blank = path.join(work, 'blank.qcow2');
  await execa('qemu-img', ['create', '-q', '-f', 'qcow2', blank, '64M']);
  const ksUrl = 'http://{{ .HTTPIP }}:{{ .HTTPPort }}/mini-ks.cfg';
  const append = DISTROS.mini.bootSpec('mini', ksUrl).args;

  const packerRun = async (n: number) => {
    const out = path.join(work, `out-${n}`);
    rmSync(out, { recursive: true, force: true });
    const template = {
      builders: [
        {
          type: 'qemu',
          iso_url: blank,
          iso_checksum: 'none',
          disk_image: true,
          disk_size: '64M',
          format: 'qcow2',
          accelerator: 'tcg',
          headless: true,
          boot_wait: '0s',
          // No boot_command to type: without this Packer still dials QEMU's VNC, and fails if the install is over first.
          disable_vnc: true,
          communicator: 'none',
          http_directory: http,
          output_directory: out,
          vm_name: 'mini.qcow2',
          memory: 256,
          cpus: 1,
          shutdown_timeout: '10m',
          qemuargs: [['-kernel', guest.kernel], ['-initrd', guest.initrd], ['-append', append], ['-serial', `file:${path.join(work, `console-${n}.log`)}`]],
        },
      ],
    };
    const file = path.join(work, `mini-${n}.json`);
    writeFileSync(file, JSON.stringify(template, null, 2));
    const r = await execa('packer', ['build', '-color=false', file], { cwd: work, reject: false, env: { PACKER_CACHE_DIR: path.join(work, 'cache'), CHECKPOINT_DISABLE: '1' } });
    if (r.exitCode !== 0) throw new Error(`packer build: ${r.stdout.split('\n').slice(-8).join('\n')}`);
    // The installer's own word that it wrote the disk: the console says so (as lab's callback does for lab).
    if (!/^mini: installed\r?$/m.test(readFileSync(path.join(work, `console-${n}.log`), 'utf8'))) throw new Error(`packer run ${n}: the console shows no finished install`);
  };
  const labRun = async () => {
    const r = await lab(['image', 'build', 'mini', '--rebuild', '--lab', dir], { timeoutMs: 900_000 });
    if (r.exitCode !== 0) throw new Error(`lab image build: ${r.stderr}`);
  };

  // Once each, not measured: lab's installer files and Packer's first start.
  await labRun();
  await packerRun(0);
  const times = { lab: [] as number[], packer: [] as number[] };
  for (let i = 1; i <= RUNS; i++) {
    times.lab.push(await timed(labRun));
    times.packer.push(await timed(() => packerRun(i)));
  }
  const [l, p] = [median(times.lab), median(times.packer)];
  console.log(`mini image from its kickstart, median of ${RUNS} interleaved runs, ${cpus().length} cores, TCG\n`);
  console.log('| tool | median | runs |\n|---|---|---|');
  console.log(`| \`lab image build mini --rebuild\` | ${l.toFixed(2)} s | ${times.lab.map((t) => t.toFixed(2)).join(', ')} s |`);
  console.log(`| \`packer build\` (${packerVersion}) | ${p.toFixed(2)} s | ${times.packer.map((t) => t.toFixed(2)).join(', ')} s |`);
  console.log(`\nlab / Packer: ${(l / p).toFixed(2)}x`);
} finally {
  cleanup();
}
