// A deploy-like operation (upload a 64 KiB file, run two commands) on 1, 10
// and 50 hosts: lab's fan-out (`lab <service> <op>`) side by side with
// parallel-ssh (Debian's pssh: parallel-scp, then parallel-ssh) and Ansible
// (Debian's ansible-core: a playbook of copy + raw + raw, -f 50). The hosts
// are network namespaces on a bridge, each running OpenSSH's sshd with its own
// host key; every tool checks host keys strictly. Each figure is the median
// of RUNS cold runs (no SSH connection kept between runs).
//   npm run bench:deploy        (COUNTS=1,10,50 RUNS=3)
import { execa, execaSync, type ResultPromise } from 'execa';
import { mkdirSync, writeFileSync, readFileSync, rmSync, existsSync, mkdtempSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { tempLab, cli } from '../test/helpers.js';
import { Inventory } from '../src/inventory/store.js';
import { labPaths } from '../src/project/paths.js';
import { ensureSecrets } from '../src/project/secrets.js';

const COUNTS = (process.env.COUNTS ?? '1,10,50').split(',').map(Number);
const RUNS = Number(process.env.RUNS ?? 3);
const MAX = Math.max(...COUNTS);
const id = process.pid % 10000;
const hub = `labbh${id}`;
const hostNs = (i: number) => `labbh${id}-${i}`;
const ip = (i: number) => `10.79.0.${10 + i}`;
const name = (i: number) => `bench-node-${i}`;

async function ensureTools(): Promise<void> {
  const missing = ['openssh-server', 'pssh', 'ansible-core'].filter(
    (p) => execaSync('dpkg-query', ['-W', '-f=${Status}', p], { reject: false }).stdout !== 'install ok installed',
  );
  if (!missing.length) return;
  console.log(`installing ${missing.join(' ')} (sshd is not started as a service)`);
  // policy-rc.d 101: the package's postinst must not start a system-wide sshd.
  const policy = '/usr/sbin/policy-rc.d';
  const ours = !existsSync(policy);
  if (ours) writeFileSync(policy, '#!/bin/sh\nexit 101\n', { mode: 0o755 });
  try {
    await execa('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { env: { DEBIAN_FRONTEND: 'noninteractive' } });
  } finally {
    if (ours) rmSync(policy);
  }
}

await ensureTools();
const work = mkdtempSync(path.join(tmpdir(), 'lab-bench-deploy-'));
const sshds: ResultPromise[] = [];
const { dir, cleanup } = await tempLab((s) =>
  s
    .replace("cidr: '10.77.0.0/24'", "cidr: '10.79.0.0/24'")
    .replace("gateway: '10.77.0.1'", "gateway: '10.79.0.1'")
    .replace('    demo: {', `    bench: { groups: [{ role: 'node', image: 'mini', count: ${MAX}, service: 'bench' }] },\n    demo: {`),
);
const sh = (cmd: string, args: string[]) => execa(cmd, args, { timeout: 60_000 });
const inHub = (cmd: string, args: string[], env?: Record<string, string>) => execa('ip', ['netns', 'exec', hub, cmd, ...args], { env, timeout: 600_000, reject: false });

async function network(): Promise<void> {
  await sh('ip', ['netns', 'add', hub]);
  await sh('ip', ['-n', hub, 'link', 'set', 'lo', 'up']);
  await sh('ip', ['-n', hub, 'link', 'add', 'br0', 'type', 'bridge']);
  await sh('ip', ['-n', hub, 'addr', 'add', '10.79.0.1/24', 'dev', 'br0']);
  await sh('ip', ['-n', hub, 'link', 'set', 'br0', 'up']);
  mkdirSync('/run/sshd', { recursive: true });
  ensureSecrets(labPaths(dir), 'lab');
  const authorized = path.join(work, 'authorized_keys');
  writeFileSync(authorized, readFileSync(labPaths(dir).sshPublicKey, 'utf8'), { mode: 0o600 });
  for (let i = 1; i <= MAX; i++) {
    const ns = hostNs(i);
    await sh('ip', ['netns', 'add', ns]);
    await sh('ip', ['-n', hub, 'link', 'add', `bh${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    await sh('ip', ['-n', hub, 'link', 'set', `bh${i}`, 'master', 'br0', 'up']);
    await sh('ip', ['-n', ns, 'addr', 'add', `${ip(i)}/24`, 'dev', 'eth0']);
    await sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
    await sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    const key = path.join(work, `host${i}_ed25519`);
    await sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
    const config = path.join(work, `sshd${i}.conf`);
    writeFileSync(
      config,
      [
        `ListenAddress ${ip(i)}`,
        `HostKey ${key}`,
        `AuthorizedKeysFile ${authorized}`,
        'PermitRootLogin prohibit-password',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'UsePAM no',
        'StrictModes no',
        'PidFile none',
        'Subsystem sftp /usr/lib/openssh/sftp-server',
        'MaxStartups 200',
      ].join('\n') + '\n',
    );
    sshds.push(execa('ip', ['netns', 'exec', ns, '/usr/sbin/sshd', '-D', '-e', '-f', config], { reject: false }));
  }
}

/** The hosts as lab's inventory would hold them after their boot callbacks. */
async function inventory(): Promise<void> {
  const now = new Date().toISOString();
  await new Inventory(labPaths(dir)).update((d) => {
    for (let i = 1; i <= MAX; i++) {
      const hostKey = readFileSync(path.join(work, `host${i}_ed25519.pub`), 'utf8').split(' ').slice(0, 2).join(' ');
      d.hosts[name(i)] = { name: name(i), env: 'bench', role: 'node', image: 'mini', ip: ip(i), hostKey, state: 'up', firstSeen: now, lastSeen: now, lastCallback: now, bootCount: 1 };
    }
  });
  const svc = path.join(dir, 'services', 'bench');
  mkdirSync(svc, { recursive: true });
  writeFileSync(path.join(svc, 'payload.bin'), randomBytes(64 * 1024));
  // Every "host" shares this machine's file system: each works in a folder of its own.
  writeFileSync(
    path.join(svc, 'service.ts'),
    `import { defineService } from 'lab';
export default defineService({
  role: 'node',
  versions: ['1'],
  files: ['payload.bin'],
  operations: {
    async push(ctx) {
      const d = '${work}/remote/lab/' + ctx.host.name;
      await ctx.put('payload.bin', d + '/payload.bin', { mode: 0o644 });
      await ctx.run('sha256sum ' + d + '/payload.bin');
      await ctx.run('wc -c < ' + d + '/payload.bin');
    },
  },
});
`,
  );
  writeFileSync(path.join(work, 'known_hosts'), Array.from({ length: MAX }, (_, k) => `${ip(k + 1)} ${readFileSync(path.join(work, `host${k + 1}_ed25519.pub`), 'utf8').split(' ').slice(0, 2).join(' ')}`).join('\n') + '\n');
}

const key = () => labPaths(dir).sshKey;
const sshOpts = () => ['-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${path.join(work, 'known_hosts')}`, '-o', 'BatchMode=yes'];

async function runLab(n: number): Promise<void> {
  const hosts = Array.from({ length: n }, (_, k) => name(k + 1)).join(',');
  const r = await inHub(process.execPath, [cli, '--lab', dir, 'bench', 'push', '--hosts', hosts, '--parallel', '50']);
  if (r.exitCode !== 0) throw new Error(`lab: ${r.stdout}\n${r.stderr}`);
}

async function runPssh(n: number): Promise<void> {
  const hostsFile = path.join(work, `pssh-hosts-${n}`);
  writeFileSync(hostsFile, Array.from({ length: n }, (_, k) => ip(k + 1)).join('\n') + '\n');
  const d = `${work}/remote/pssh`;
  const common = ['-h', hostsFile, '-l', 'root', '-p', '50', '-t', '120', '-x', `-i ${key()} ${sshOpts().join(' ')}`];
  mkdirSync(d, { recursive: true }); // shared file system: parallel-scp does not make folders
  const scp = await inHub('parallel-scp', [...common, path.join(dir, 'services', 'bench', 'payload.bin'), `${d}/payload.bin`]);
  if (scp.exitCode !== 0) throw new Error(`parallel-scp: ${scp.stdout}${scp.stderr}`);
  const run = await inHub('parallel-ssh', [...common, `sha256sum ${d}/payload.bin && wc -c < ${d}/payload.bin`]);
  if (run.exitCode !== 0) throw new Error(`parallel-ssh: ${run.stdout}${run.stderr}`);
}

async function runAnsible(n: number, round: number): Promise<void> {
  const inv = path.join(work, `ansible-${n}.ini`);
  writeFileSync(inv, '[nodes]\n' + Array.from({ length: n }, (_, k) => `${name(k + 1)} ansible_host=${ip(k + 1)}`).join('\n') + '\n');
  const play = path.join(work, 'play.yml');
  writeFileSync(
    play,
    `- hosts: nodes
  gather_facts: false
  remote_user: root
  tasks:
    - copy: { src: ${path.join(dir, 'services', 'bench', 'payload.bin')}, dest: "${work}/remote/ansible/{{ inventory_hostname }}/payload.bin", mode: "0644" }
    - raw: sha256sum ${work}/remote/ansible/{{ inventory_hostname }}/payload.bin
    - raw: wc -c < ${work}/remote/ansible/{{ inventory_hostname }}/payload.bin
`,
  );
  mkdirSync(`${work}/remote/ansible`, { recursive: true });
  for (let k = 1; k <= n; k++) mkdirSync(`${work}/remote/ansible/${name(k)}`, { recursive: true });
  // A control-socket folder per run: every run starts cold, as lab's and pssh's do.
  const cp = path.join(work, `cp-${n}-${round}`);
  const r = await inHub('ansible-playbook', ['-i', inv, '-f', '50', '--private-key', key(), play], {
    ANSIBLE_HOST_KEY_CHECKING: 'True',
    ANSIBLE_SSH_ARGS: `-C -o ControlMaster=auto -o ControlPersist=60s ${sshOpts().join(' ')}`,
    ANSIBLE_SSH_CONTROL_PATH_DIR: cp,
    ANSIBLE_LOCAL_TEMP: path.join(work, 'ansible-tmp'),
    ANSIBLE_PYTHON_INTERPRETER: '/usr/bin/python3',
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/root',
  });
  // Its persisted master connections are background processes of ours: end them.
  await execa('pkill', ['-f', cp], { reject: false });
  if (r.exitCode !== 0) throw new Error(`ansible-playbook: ${r.stdout}${r.stderr}`);
}

async function median(fn: (round: number) => Promise<void>): Promise<number> {
  const times: number[] = [];
  for (let round = 0; round < RUNS; round++) {
    const t = performance.now();
    await fn(round);
    times.push((performance.now() - t) / 1000);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

try {
  await network();
  await inventory();
  // sshd is up when it answers on every address.
  for (let i = 1; i <= MAX; i++) {
    for (let t = 0; ; t++) {
      const r = await inHub('bash', ['-c', `exec 3<>/dev/tcp/${ip(i)}/22`]).catch(() => undefined);
      if (r?.exitCode === 0 || t > 50) break;
      await new Promise((res) => setTimeout(res, 100));
    }
  }
  await runLab(1); // warm node's and sshd's caches; not measured
  const rows: string[][] = [];
  for (const n of COUNTS) {
    const l = await median(() => runLab(n));
    const p = await median(() => runPssh(n));
    const a = await median((round) => runAnsible(n, round));
    rows.push([String(n), `${l.toFixed(2)} s`, `${p.toFixed(2)} s`, `${a.toFixed(2)} s`, `${(a / l).toFixed(1)} x`, `${(l / p).toFixed(2)} x`]);
  }
  const { stdout: cores } = await execa('nproc');
  console.log(`upload 64 KiB + two commands per host, OpenSSH sshd in network namespaces, ${cores} cores, median of ${RUNS}`);
  const head = ['hosts', 'lab', 'parallel-ssh', 'ansible -f 50', 'ansible / lab', 'lab / pssh'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const r of [head, ...rows]) console.log(r.map((c, i) => c.padStart(widths[i]!)).join('  '));
} finally {
  for (const s of sshds) s.kill('SIGTERM');
  await Promise.all(sshds);
  for (let i = 1; i <= MAX; i++) await execa('ip', ['netns', 'del', hostNs(i)], { reject: false });
  await execa('ip', ['netns', 'del', hub], { reject: false });
  rmSync(work, { recursive: true, force: true });
  cleanup();
}
