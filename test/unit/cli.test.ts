import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync, mkdtempSync, mkdirSync, rmSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { lab, tempLab, callbackToken, repo, cli } from '../helpers.js';

test('lab init scaffolds a lab folder and refuses to overwrite one', async () => {
  const parent = mkdtempSync(path.join(tmpdir(), 'lab-init-'));
  const dir = path.join(parent, 'mylab');
  try {
    const r = await lab(['init', dir]);
    assert.equal(r.exitCode, 0, r.stderr);
    for (const f of ['environments.ts', 'kickstart/centos-ks.cfg', 'kickstart/mini-ks.cfg', 'pxe/pxelinux.cfg.njk', 'services/hello/README.md', 'iso/README.md', '.gitignore']) {
      assert.ok(existsSync(path.join(dir, f)), f);
    }
    assert.match(readFileSync(path.join(dir, '.gitignore'), 'utf8'), /^inventory\/$/m);
    const again = await lab(['init', dir]);
    assert.equal(again.exitCode, 2);
    assert.match(again.stderr, /^lab: .*environments\.ts already exists.*--force/);
    // --lab works from anywhere, and the folder's environments.ts imports 'lab' without being inside this package.
    const check = await lab(['check', '--lab', dir, '--images', 'mini']);
    assert.equal(check.exitCode, 0, check.stderr);
    // For VirtualBox, a network inside the host-only range it allows without networks.conf (192.168.56.0/21).
    const vbox = path.join(parent, 'vboxlab');
    assert.equal((await lab(['init', vbox, '--provider', 'virtualbox'])).exitCode, 0);
    const config = readFileSync(path.join(vbox, 'environments.ts'), 'utf8');
    assert.match(config, /provider: 'virtualbox',[^]*cidr: '192\.168\.56\.0\/24',\s+gateway: '192\.168\.56\.1'/);
    assert.equal((await lab(['check', '--lab', vbox, '--images', 'mini'])).exitCode, 0);
    const xen = await lab(['init', path.join(parent, 'x'), '--provider', 'xen']);
    assert.equal(xen.exitCode, 2);
    assert.equal(xen.stderr.trim(), 'lab: --provider: no provider "xen"; providers: qemu, virtualbox, libvirt');
  } finally {
    rmSync(parent, { recursive: true, force: true });
  }
});

test('lab kickstart --all --out writes one kickstart per declared host, mode 0600, with stable leases', async () => {
  const { dir, cleanup } = await tempLab();
  try {
    const out = path.join(dir, 'out');
    const r = await lab(['kickstart', '--all', '--out', out, '--lab', dir]);
    assert.equal(r.exitCode, 0, r.stderr);
    const files = readdirSync(out).filter((f) => f.endsWith('.cfg')).sort();
    assert.equal(files.length, 13);
    // Inside the lab folder, the output folder keeps itself out of git.
    assert.equal(readFileSync(path.join(out, '.gitignore'), 'utf8').split('\n').filter((l) => l && !l.startsWith('#')).join(), '*');
    for (const f of files) assert.equal(statSync(path.join(out, f)).mode & 0o777, 0o600, `${f} holds the token`);
    // Bridged lab: addresses from the CIDR in declaration order, the gateway excluded.
    const lb = readFileSync(path.join(out, 'demo-lb-1.cfg'), 'utf8');
    assert.match(lb, /^network --bootproto=static --ip=10\.77\.0\.2 --netmask=255\.255\.255\.0 --gateway=10\.77\.0\.1 --hostname=demo-lb-1$/m);
    const one = await lab(['kickstart', 'demo-lb-1', '--lab', dir]);
    assert.equal(one.stdout.trim(), lb.trim(), 'the same text as the file, the same lease');
  } finally {
    cleanup();
  }
});

test('the CentOS kickstart is complete for an unattended RHEL 9 install', async () => {
  const { dir, cleanup } = await tempLab();
  try {
    const r = await lab(['kickstart', 'prod-worker-3', '--lab', dir]);
    assert.equal(r.exitCode, 0, r.stderr);
    const ks = r.stdout;
    const token = callbackToken(dir, 'prod-worker-3');
    const pub = readFileSync(path.join(dir, 'inventory', 'lab_ed25519.pub'), 'utf8').trim();
    for (const line of [
      /^text$/m,
      /^cdrom$/m,
      /^lang en_US\.UTF-8$/m,
      /^keyboard --vckeymap=us --xlayouts=us$/m,
      /^timezone Etc\/UTC --utc$/m,
      /^network --device=link --bootproto=static --ip=10\.77\.0\.\d+ .*--hostname=prod-worker-3 --activate --onboot=yes$/m,
      /^rootpw --lock$/m,
      /^zerombr$/m,
      /^clearpart --all --initlabel$/m,
      /^autopart --type=lvm --nohome$/m,
      /^bootloader /m,
      /^reboot --eject$/m,
      /^%packages\n@\^minimal-environment\nopenssh-server\ncurl\n[\s\S]*?^%end$/m,
      /^%post --log=\/root\/lab-post\.log\n[\s\S]*?^%end$/m,
    ]) {
      assert.match(ks, line);
    }
    assert.ok(ks.includes(`sshkey --username=root "${pub}"`));
    assert.ok(ks.includes(`--data-urlencode "hostkey=$(cat /etc/ssh/ssh_host_ed25519_key.pub /etc/ssh/ssh_host_ecdsa_key.pub /etc/ssh/ssh_host_rsa_key.pub 2>/dev/null)"`), 'every host key in the callback');
    assert.ok(ks.includes(`"http://10.77.0.1:8077/booted?host=prod-worker-3&token=${token}&stage=\$1&mac=\${mac}&ip=\${ip}"`), 'the callback kept on the host');
    assert.match(ks, /^%pre --log=\/tmp\/lab-pre\.log\n[\s\S]*?&stage=started&[\s\S]*?^%end$/m);
    assert.match(ks, /^\/usr\/local\/sbin\/lab-callback installed$/m);
    assert.match(ks, /^ExecStart=\/usr\/local\/sbin\/lab-callback up$/m);
    // Commands RHEL 9's syntax no longer has.
    assert.doesNotMatch(ks, /^(install|device|deviceprobe|dmraid|multipath|auth|authconfig|upgrade)\b/m);
    assert.doesNotMatch(ks, /\{\{|\{%|undefined/, 'fully rendered');
  } finally {
    cleanup();
  }
});

test('lab pxe --out writes a TFTP-ready tree', async () => {
  const { dir, cleanup } = await tempLab();
  try {
    const out = path.join(dir, 'tftp');
    const r = await lab(['pxe', '--out', out, '--lab', dir]);
    assert.equal(r.exitCode, 0, r.stderr);
    const cfgs = readdirSync(path.join(out, 'pxelinux.cfg'));
    // 13 environment hosts and the 2 image builds (centos9, mini)
    assert.equal(cfgs.filter((f) => /^01-52-54-00(-[0-9a-f]{2}){3}$/.test(f)).length, 15);
    assert.ok(cfgs.includes('default'));
    assert.deepEqual(readdirSync(path.join(out, 'ipxe')).filter((f) => !f.startsWith('demo-') && !f.startsWith('prod-')).sort(), ['centos9.ipxe', 'mini.ipxe']);
    assert.match(readFileSync(path.join(out, 'boot.ipxe'), 'utf8'), /^#!ipxe/);
  } finally {
    cleanup();
  }
});

test('lab kickstart --lint passes the scaffold and names what an unattended install would stop at', async () => {
  const { dir, cleanup } = await tempLab();
  try {
    const ok = await lab(['kickstart', '--all', '--lint', '--lab', dir]);
    assert.equal(ok.exitCode, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /^15 kickstarts complete for an unattended install$/m);
    const file = path.join(dir, 'kickstart', 'centos-ks.cfg');
    const ks = readFileSync(file, 'utf8');
    // pykickstart's validator accepts all of this; an install would hang or never report back.
    writeFileSync(file, ks.replace(/^timezone .*$/m, '').replace(/^reboot .*$/m, '').replace(/^exec curl .*\\\n.*\\\n.*$/m, 'true').concat('\nauthconfig --enableshadow\n'));
    const bad = await lab(['kickstart', 'prod-worker-1', '--lint', '--lab', dir]);
    assert.equal(bad.exitCode, 1);
    const lines = bad.stdout.trim().split('\n');
    assert.deepEqual(lines.map((l) => l.replace(/:.*$/, '')), Array(lines.length).fill('kickstart/centos-ks.cfg (prod-worker-1)'));
    assert.match(bad.stdout, /missing timezone/);
    assert.match(bad.stdout, /missing reboot, poweroff, halt or shutdown/);
    assert.match(bad.stdout, /no callback in %post/);
    assert.match(bad.stdout, /: warning: "authconfig" is deprecated on RHEL9: pykickstart warns and anaconda ignores it; use authselect \(removed on RHEL 10\)$/m);
    assert.match(bad.stderr, /^lab: 1 of 1 kickstarts are not complete for an unattended install$/m);
    // Checked against RHEL 10, authconfig is an error; a release CentOS has not is refused.
    const ten = await lab(['kickstart', 'prod-worker-1', '--lint', '--target', 'RHEL10', '--lab', dir]);
    assert.match(ten.stdout, /: "authconfig" is not a RHEL10 kickstart command: anaconda stops on it$/m);
    const eight = await lab(['kickstart', 'prod-worker-1', '--lint', '--target', 'RHEL8', '--lab', dir]);
    assert.equal(eight.exitCode, 2);
    assert.match(eight.stderr, /^lab: --target: centos kickstarts are checked against RHEL9 or RHEL10, not "RHEL8"$/);
    // A warning alone does not fail the check.
    writeFileSync(file, ks.concat('\nauthconfig --enableshadow\n'));
    const warned = await lab(['kickstart', 'prod-worker-1', '--lint', '--lab', dir]);
    assert.equal(warned.exitCode, 0, warned.stdout + warned.stderr);
    assert.match(warned.stdout, /warning: "authconfig" is deprecated/);
  } finally {
    cleanup();
  }
});

test('lab services lists the services; unknown services, operations, versions, hosts and broken service.ts files get one-line errors', async () => {
  const { dir, cleanup } = await tempLab();
  try {
    const list = await lab(['services', '--lab', dir]);
    assert.equal(list.exitCode, 0, list.stderr);
    assert.match(list.stdout, /^hello +worker +1\.0\.0 1\.1\.0 2\.0\.0 +deploy start stop status test +demo\/worker@1\.0\.0 prod\/worker@1\.0\.0 +answers HTTP/m);
    const json = JSON.parse((await lab(['services', '--lab', dir, '--json'])).stdout) as { name: string; operations: string[] }[];
    assert.deepEqual(json.map((s) => [s.name, s.operations]), [
      ['hello', ['deploy', 'start', 'stop', 'status', 'test']],
      ['lb', ['deploy', 'start', 'stop', 'status', 'reconfigure', 'health', 'test']],
    ]);
    const help = await lab(['--lab', dir, '--help']);
    assert.match(help.stdout, /^ {2}hello \[options\] <operation> +service hello/m);
    // The build's summaries (dist/commands.json) are what the commands' modules register now, so --help says what they do.
    const { commandSummaries } = await import('../../src/cli/commands.js');
    const { Command } = await import('commander');
    const summaries = await commandSummaries(new Command('lab'));
    assert.deepEqual(JSON.parse(readFileSync(path.join(repo, 'dist', 'commands.json'), 'utf8')), summaries, 'dist/commands.json is stale: npm run build');
    for (const s of summaries) assert.match(help.stdout, new RegExp(`^  ${s.term.replace(/[[\]]/g, '\\$&')} +${s.description.split(' ').slice(0, 3).join(' ').replace(/[()[\]]/g, '\\$&')}`, 'm'), s.name);

    const cases: [string[], RegExp][] = [
      [['helo', 'deploy'], /^lab: unknown command or service "helo"; services: hello, lb; commands: init, check, .*services; see `lab --help`/],
      [['--bogus'], /^lab: unknown option "--bogus"; see `lab --help`$/],
      [['hello', 'frob'], /^lab: service hello has no operation "frob"; operations: deploy, start, stop, status, test$/],
      [['hello', 'test', '--version', '9.9'], /^lab: --version: service hello has no version "9\.9"; versions: 1\.0\.0, 1\.1\.0, 2\.0\.0$/],
      [['hello', 'test', '--env', 'staging'], /^lab: --env: no environment "staging"; environments: demo, prod$/],
      [['hello', 'test', '--role', 'db'], /^lab: --role: no role "db" in any environment; roles: lb, worker$/],
      [['hello', 'test', '--hosts', 'demo-worker-9'], /^lab: --hosts: no host "demo-worker-9" in environments\.ts/],
      [['hello', 'test', '--hosts', 'demo-worker-1', '--env', 'prod'], /^lab: --hosts: demo-worker-1 is in environment demo, not prod$/],
      [['hello', 'test', '--parallel', '0'], /^lab: --parallel: expected a whole number from 1 to 1024, got "0"$/],
    ];
    for (const [args, message] of cases) {
      const r = await lab(['--lab', dir, ...args]);
      assert.equal(r.exitCode, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }
    // No host has called back: nothing to run on is a failure (1), not a usage error.
    const none = await lab(['--lab', dir, 'hello', 'deploy']);
    assert.equal(none.exitCode, 1);
    assert.match(none.stderr, /^lab: no host of role worker has called back yet: nothing to run hello deploy on; build and boot the hosts first/);
    // A named host that never called back is reported as skipped, with the reason.
    const named = JSON.parse((await lab(['--lab', dir, 'hello', 'test', '--hosts', 'demo-worker-1', '--json'])).stdout) as { hosts: { outcome: string; detail: string }[] };
    assert.deepEqual(named.hosts.map((h) => [h.outcome, h.detail]), [['skipped', 'no boot callback recorded: not built or not booted yet']]);

    // Broken service definitions name the file and the field.
    const svc = path.join(dir, 'services', 'hello', 'service.ts');
    const good = readFileSync(svc, 'utf8');
    const broken: [string, RegExp][] = [
      [good.replace("role: 'worker',", "role: 'worker', colour: 'red',"), /^lab: services\/hello\/service\.ts: \(top level\): unknown field "colour"$/],
      [good.replace("versions: ['1.0.0', '1.1.0', '2.0.0'],", 'versions: [],'), /^lab: services\/hello\/service\.ts: versions: expected at least one version$/],
      [good.replace("'files/hello-mini.sh',", "'files/missing.sh',"), /^lab: services\/hello\/service\.ts: files: files\/missing\.sh does not exist in services\/hello$/],
      [good.replace('async stop(ctx) {', 'stop: 42, async old(ctx) {'), /^lab: services\/hello\/service\.ts: operations\.stop: expected a function/],
      [good.replace('export default defineService({', 'export default defineService({ ,'), /^lab: services\/hello\/service\.ts: cannot be loaded: /],
    ];
    for (const [source, message] of broken) {
      writeFileSync(svc, source);
      const r = await lab(['--lab', dir, 'hello', 'test']);
      assert.equal(r.exitCode, 2, r.stderr);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }
    writeFileSync(svc, good);
    // A group asking for a version the service does not have.
    const env = path.join(dir, 'environments.ts');
    writeFileSync(env, readFileSync(env, 'utf8').replace("service: 'hello', version: '1.0.0' },\n      ],\n    },\n    prod", "service: 'hello', version: '3.0.0' },\n      ],\n    },\n    prod"));
    const badVersion = await lab(['--lab', dir, 'hello', 'test']);
    assert.equal(badVersion.exitCode, 2);
    assert.match(badVersion.stderr, /^lab: environments\.ts: environments\.demo\.groups\[1\]\.version: service hello has no version "3\.0\.0"; versions: 1\.0\.0, 1\.1\.0, 2\.0\.0$/);
  } finally {
    cleanup();
  }
});

test('lab completion bash and zsh complete commands, options, and the lab folder\'s services and their operations', async () => {
  const { dir, cleanup } = await tempLab();
  try {
    const scripts = path.join(dir, 'completion');
    writeFileSync(`${scripts}.bash`, (await lab(['completion', 'bash'])).stdout);
    writeFileSync(`${scripts}.zsh`, (await lab(['completion', 'zsh'])).stdout);
    // A service of shell stages: deploy and the scripts it has.
    mkdirSync(path.join(dir, 'services', 'setup', 'stages', '0-base'), { recursive: true });
    writeFileSync(path.join(dir, 'services', 'setup', 'stages', '0-base', 'bootstrap.sh'), 'true\n');
    writeFileSync(path.join(dir, 'services', 'setup', 'test.sh'), 'true\n');
    const cases: [string[], string][] = [
      [['lab', ''], 'init check serve kickstart pxe hosts image ssh-config ssh env monitor doctor hypervisor console completion services --lab --debug hello lb setup'],
      [['lab', 'setup', ''], 'deploy test'],
      [['lab', 'env', 'st'], 'start-all start-min start-worker stop status'],
      [['lab', 'hello', ''], 'deploy start stop status test'],
      [['lab', 'lb', 're'], 'reconfigure'],
      [['lab', 'hello', 'test', '--v'], '--version --via'],
      [['lab', 'hosts', 'list', '--f'], '--format'],
    ];
    const quote = (w: string) => `'${w}'`;
    for (const [words, expected] of cases) {
      const call = `COMP_WORDS=(${words.map(quote).join(' ')}); COMP_CWORD=${words.length - 1}; _lab; echo "\${COMPREPLY[*]}"`;
      const bash = await execa('bash', ['-c', `lab() { :; }; source ${scripts}.bash; ${call}`], { cwd: dir });
      assert.equal(bash.stdout, expected, `bash: ${words.join(' ')}`);
      // zsh runs it through bashcompinit, which calls it with 0-based arrays and leaves matching the word typed to compadd.
      const zsh = await execa('zsh', ['-c', `source ${scripts}.zsh; (( $+_comps[lab] )) || exit 9; setopt ksharrays; ${call}`], { cwd: dir });
      const typed = words.at(-1)!;
      assert.equal(zsh.stdout.split(' ').filter((w) => w.startsWith(typed)).join(' '), expected, `zsh: ${words.join(' ')}`);
    }
    const bad = await lab(['completion', 'fish']);
    assert.equal(bad.exitCode, 2);
    assert.match(bad.stderr, /^lab: completion: no shell "fish"; shells: bash, zsh$/);
  } finally {
    cleanup();
  }
});

test('a command loads what it uses: lab hosts list and lab --help load neither the server, the templates, the file watcher, SSH, process spawning nor ping; a read takes no lock; lab kickstart loads the templates; an unchanged environments.ts is not run again, a changed one (or one that imports more than lab) is', async () => {
  const { dir, cleanup } = await tempLab();
  const loaded = path.join(dir, 'loaded.txt');
  const packages = async (args: string[]) => {
    writeFileSync(loaded, '');
    const r = await execa('node', ['--import', path.join(repo, 'test', 'fixtures', 'loaded-packages.mjs'), path.join(repo, 'dist', 'cli.js'), '--lab', dir, ...args], {
      env: { LAB_LOADED_PACKAGES: loaded },
      reject: false,
    });
    assert.equal(r.exitCode, 0, r.stderr);
    return new Set(readFileSync(loaded, 'utf8').split('\n').filter(Boolean));
  };
  try {
    for (const args of [['hosts', 'list'], ['--help']]) {
      const loadedBy = await packages(args);
      assert.ok(loadedBy.has('commander'), [...loadedBy].join(' '));
      for (const heavy of ['express', 'nunjucks', 'chokidar', 'ssh2', 'execa', 'ping']) assert.ok(!loadedBy.has(heavy), `lab ${args.join(' ')} loaded ${heavy}`);
    }
    const listing = await packages(['hosts', 'list']);
    assert.ok(listing.has('lowdb'), 'the hook sees the inventory read');
    // A read takes no lock: the lock's packages load with the first change.
    for (const lock of ['proper-lockfile', 'graceful-fs']) assert.ok(!listing.has(lock), `lab hosts list loaded ${lock}`);
    assert.ok((await packages(['hosts', 'filter'])).has('proper-lockfile'), 'the hook sees the lock of a change');
    // Every schema is zod/mini: with classic zod anywhere in the build, its whole core loaded with the inventory's schema.
    const meta = JSON.parse(readFileSync(path.join(repo, 'dist', 'bundle-meta.json'), 'utf8')) as { inputs: Record<string, unknown> };
    assert.deepEqual(Object.keys(meta.inputs).filter((i) => i.includes('zod/v4/classic')), []);
    // --help lists the commands from the build's summaries: no command's module, so neither the inventory nor the schemas.
    for (const opened of ['lowdb', 'zod', 'proper-lockfile']) assert.ok(!(await packages(['--help'])).has(opened), `lab --help loaded ${opened}`);
    // The hook sees what it should: a kickstart is rendered with nunjucks.
    assert.ok((await packages(['kickstart', 'demo-worker-1'])).has('nunjucks'));

    // An unchanged environments.ts is neither run (jiti) nor validated again: its checked value is kept per content.
    assert.ok(!(await packages(['hosts', 'list'])).has('jiti'), 'the validated config was read from inventory/checked/environments.json');
    assert.equal(statSync(path.join(dir, 'inventory', 'checked', 'environments.json')).mode & 0o777, 0o600);
    // lab services lists unchanged services from their kept summaries: no service.ts compiled.
    assert.equal((await lab(['services', '--lab', dir])).exitCode, 0);
    assert.ok(!(await packages(['services'])).has('jiti'), 'lab services read the kept summaries');
    const config = path.join(dir, 'environments.ts');
    const source = readFileSync(config, 'utf8');
    // A change is seen at once: a bad value is refused, a good one shown.
    writeFileSync(config, source.replace("cidr: '10.77.0.0/24'", "cidr: '10.77.0.0/33'"));
    const bad = await lab(['hosts', 'list', '--lab', dir]);
    assert.equal(bad.exitCode, 2, bad.stderr);
    assert.match(bad.stderr, /^lab: environments\.ts: network\.cidr: /);
    writeFileSync(config, source.replace("max: 2,", "max: 3,"));
    assert.ok((await packages(['env', 'status', 'demo'])).has('jiti'), 'a changed file is run again');
    assert.match((await lab(['env', 'status', 'demo', '--lab', dir])).stdout, /demo-worker-3/);
    // A file importing more than 'lab' is run every time: what it imports could change unseen.
    writeFileSync(path.join(dir, 'sizes.ts'), 'export const workers = 4;\n');
    writeFileSync(config, `import { workers } from './sizes';\n${source.replace('max: 2,', 'max: workers,')}`);
    assert.match((await lab(['env', 'status', 'demo', '--lab', dir])).stdout, /demo-worker-4/);
    writeFileSync(path.join(dir, 'sizes.ts'), 'export const workers = 5;\n');
    assert.match((await lab(['env', 'status', 'demo', '--lab', dir])).stdout, /demo-worker-5/);
  } finally {
    cleanup();
  }
});

test('a service of an Ansible playbook is listed with deploy and one operation per tag (never-tagged ones too); a playbook ansible cannot read is refused in one line naming it', async () => {
  const { dir, cleanup } = await tempLab();
  const web = path.join(dir, 'services', 'web');
  mkdirSync(path.join(web, 'roles', 'site', 'tasks'), { recursive: true });
  writeFileSync(path.join(web, 'playbook.yml'), '- hosts: worker\n  roles: [site]\n  tasks:\n    - name: check\n      ansible.builtin.command: "true"\n      tags: [test, never]\n');
  writeFileSync(path.join(web, 'roles', 'site', 'tasks', 'main.yml'), '- name: page\n  ansible.builtin.copy: { content: "hi", dest: /tmp/page }\n- name: up\n  ansible.builtin.command: "true"\n  tags: [start, always]\n');
  const listed = async () => {
    const r = await lab(['services', '--lab', dir, '--json']);
    return { ...r, web: r.exitCode === 0 ? (JSON.parse(r.stdout) as { name: string; role: string; versions: string[]; operations: string[]; description: string }[]).find((s) => s.name === 'web') : undefined };
  };
  try {
    const first = await listed();
    assert.equal(first.exitCode, 0, first.stderr);
    assert.deepEqual([first.web?.role, first.web?.operations, first.web?.description], ['web', ['deploy', 'start', 'test'], 'Ansible playbook (tags: start, test)']);
    assert.match(first.web!.versions.join(), /^[0-9a-f]{12}$/, 'no group names it: the digest of its files is its version');
    // A role's file edited: another version, and its tags read again.
    writeFileSync(path.join(web, 'roles', 'site', 'tasks', 'main.yml'), '- name: page\n  ansible.builtin.copy: { content: "hi", dest: /tmp/page }\n  tags: [stop]\n');
    const edited = await listed();
    assert.notDeepEqual(edited.web?.versions, first.web?.versions);
    assert.deepEqual(edited.web?.operations, ['deploy', 'stop', 'test']);
    assert.equal((await lab(['web', 'frob', '--lab', dir])).stderr.trim(), 'lab: service web has no operation "frob"; operations: deploy, stop, test');
    const completion = await execa('bash', ['-c', `source <(${process.execPath} ${cli} completion bash); _lab_operations ${dir} web`]);
    assert.deepEqual(completion.stdout.split('\n'), ['deploy', 'stop', 'test']);

    writeFileSync(path.join(web, 'playbook.yml'), '- hosts: worker\n  roles: [nosuch]\n');
    const broken = await lab(['services', '--lab', dir]);
    assert.equal(broken.exitCode, 2, broken.stdout);
    assert.match(broken.stderr, /^lab: services\/web\/playbook\.yml: ansible-playbook cannot read it: ERROR! the role 'nosuch' was not found/);
    assert.equal(broken.stderr.trim().split('\n').length, 1);
  } finally {
    cleanup();
  }
});

test('a service of shell stages (no service.ts) is listed with its operations, its role and version from environments.ts; misnamed or incomplete stages are refused in one line', async () => {
  const { dir, cleanup } = await tempLab();
  const setup = path.join(dir, 'services', 'setup');
  const stage = (name: string, files: Record<string, string>) => {
    mkdirSync(path.join(setup, 'stages', name), { recursive: true });
    for (const [f, text] of Object.entries(files)) writeFileSync(path.join(setup, 'stages', name, f), text);
  };
  const listed = async () => {
    const r = await lab(['services', '--lab', dir, '--json']);
    return { ...r, setup: r.exitCode === 0 ? (JSON.parse(r.stdout) as { name: string; role: string; versions: string[]; operations: string[]; groups: string[] }[]).find((s) => s.name === 'setup') : undefined };
  };
  try {
    stage('0-base', { 'bootstrap.sh': 'echo base\n', 'motd.txt': 'hi\n' });
    stage('10-app', { 'bootstrap.sh': 'echo app\n' });
    writeFileSync(path.join(setup, 'stop.sh'), 'echo stop\n');
    const first = await listed();
    assert.equal(first.exitCode, 0, first.stderr);
    assert.equal(first.setup?.role, 'setup', 'no group names it: the folder name is its role');
    assert.deepEqual(first.setup?.operations, ['deploy', 'stop']);
    assert.match(first.setup!.versions.join(), /^[0-9a-f]{12}$/);
    // An edit of a stage's file is another version.
    writeFileSync(path.join(setup, 'stages', '0-base', 'motd.txt'), 'hello\n');
    assert.notDeepEqual((await listed()).setup?.versions, first.setup?.versions);
    // A group that names it gives it its role and version.
    const config = path.join(dir, 'environments.ts');
    const source = readFileSync(config, 'utf8');
    writeFileSync(config, source.replace("{ role: 'worker', image: 'mini', min: 1, max: 2,", "{ role: 'db', image: 'mini', count: 1, service: 'setup', version: '3.1' },\n        { role: 'worker', image: 'mini', min: 1, max: 2,"));
    const grouped = await listed();
    assert.equal(grouped.exitCode, 0, grouped.stderr);
    assert.deepEqual([grouped.setup?.role, grouped.setup?.versions, grouped.setup?.groups], ['db', ['3.1'], ['demo/db@3.1']]);
    assert.equal((await lab(['setup', 'frob', '--lab', dir])).stderr.trim(), 'lab: service setup has no operation "frob"; operations: deploy, stop');
    writeFileSync(config, source);

    const cases: [() => void, RegExp][] = [
      [() => stage('base', { 'bootstrap.sh': '' }), /^lab: services\/setup\/stages\/base: expected a folder named <n>-<name>, such as 0-base, holding a bootstrap\.sh$/],
      [() => stage('2-empty', { 'readme.txt': '' }), /^lab: services\/setup\/stages\/2-empty: no bootstrap\.sh$/],
      [() => stage('0-other', { 'bootstrap.sh': '' }), /^lab: services\/setup\/stages: stages 0-base and 0-other share the number 0; their order would be a guess$/],
    ];
    for (const [make, error] of cases) {
      const before = readdirSync(path.join(setup, 'stages'));
      make();
      const r = await lab(['services', '--lab', dir]);
      assert.equal(r.exitCode, 2, r.stdout);
      assert.match(r.stderr, error);
      for (const f of readdirSync(path.join(setup, 'stages'))) if (!before.includes(f)) rmSync(path.join(setup, 'stages', f), { recursive: true });
    }
    assert.equal((await listed()).exitCode, 0);
  } finally {
    cleanup();
  }
});
