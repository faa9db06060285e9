import { lastLines } from '../src/providers/console.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { lab, tempLab, serve, userNetworking, eventually, freePort, sshRun, sftpPut } from './helpers.js';
import { QemuProvider } from '../src/providers/qemu/provider.js';
import { miniGuest } from '../src/distros/mini/guest.js';
import { Inventory } from '../src/inventory/store.js';
import { labPaths } from '../src/project/paths.js';
import type { HostRecord } from '../src/inventory/types.js';

test('a mini guest installs from its kickstart by direct kernel boot, boots its disk, answers SSH with the recorded host key, stops gracefully, and is deleted without a trace', { timeout: 600_000 }, async () => {
  const { dir, cleanup } = await tempLab(userNetworking);
  const server = await serve(dir);
  const paths = labPaths(dir);
  const provider = new QemuProvider(path.join(paths.inventory, 'vms'));
  const name = 'demo-worker-1';
  try {
    const guest = await miniGuest();
    const port = new URL(server.url).port;
    // The kickstart fetch allocates the host's lease (its MAC).
    const ks = await lab(['kickstart', name, '--lab', dir]);
    assert.equal(ks.exitCode, 0, ks.stderr);
    const inv = new Inventory(paths);
    const mac = (await inv.read()).leases[name]!.mac;
    const sshPort = await freePort();
    await provider.create({
      name,
      cpus: 1,
      memoryMiB: 256,
      diskMiB: 64,
      mac,
      network: { mode: 'user', sshPort },
      diskBoot: { kernel: guest.kernel, initrd: guest.initrd, append: 'console=ttyS0' },
    });
    assert.equal((await provider.info(name)).state, 'stopped');

    // Install, started by hand (not by lab image build): its install window is opened by hand too.
    assert.equal((await lab(['kickstart', '--allow', name, '--lab', dir])).exitCode, 0);
    await provider.start(name, {
      boot: { kind: 'kernel', kernel: guest.kernel, initrd: guest.initrd, append: `console=ttyS0 inst.ks=http://10.0.2.2:${port}/ks/${name}` },
      noReboot: true,
    });
    await eventually(async () => (await provider.info(name)).state === 'stopped', 180_000, 'the install to power off');
    const installed = (await inv.read()).hosts[name] as HostRecord;
    assert.equal(installed?.bootCount, 1, lastLines(await provider.console(name), 20));
    assert.equal(installed.mac, mac);
    assert.equal(installed.env, 'demo');
    assert.match(installed.hostKey ?? '', /^ssh-ed25519 [A-Za-z0-9+/]{68}$/);
    assert.match((installed.otherKeys ?? []).join(','), /^ssh-rsa AAAAB3NzaC1yc2E[A-Za-z0-9+/]{300,}={0,2}$/, 'its RSA key, sent at the same callback');

    // Boot the installed disk: it calls back again.
    await provider.start(name, { boot: { kind: 'disk' } });
    await eventually(async () => ((await inv.read()).hosts[name]?.bootCount ?? 0) >= 2, 180_000, 'the second callback');
    assert.equal((await provider.info(name)).state, 'running');

    const key = readFileSync(paths.sshKey, 'utf8');
    const blob = installed.hostKey!.split(' ')[1]!;
    assert.equal((await sshRun(sshPort, key, blob, 'hostname')).trim(), name);
    // SFTP works (dropbear with OpenSSH's sftp-server), with the file mode kept.
    await sftpPut(sshPort, key, blob, '/tmp/lab-sftp-test', 'hello over sftp\n', 0o640);
    assert.equal(await sshRun(sshPort, key, blob, 'stat -c %a /tmp/lab-sftp-test; cat /tmp/lab-sftp-test'), '640\nhello over sftp\n');
    // A host key other than the recorded one is refused.
    await assert.rejects(sshRun(sshPort, key, Buffer.from('not the key').toString('base64'), 'true'));

    // The host manager sees it through the forwarded port.
    await inv.update((d) => {
      d.hosts[name]!.reach = { address: '127.0.0.1', port: sshPort };
    });
    const filter = await lab(['hosts', 'filter', '--lab', dir, '--json']);
    assert.equal((JSON.parse(filter.stdout) as { alive: boolean }[])[0]!.alive, true);

    // OpenSSH through lab's config, the host key pinned; and lab ssh, passing on the exit code.
    const config = await lab(['ssh-config', '--lab', dir]);
    assert.equal(config.exitCode, 0, config.stderr);
    assert.match(config.stdout, new RegExp(`^Host ${name}\n  HostName 127\.0\.0\.1\n  Port ${sshPort}\n`, 'm'));
    const viaConfig = await execa('ssh', ['-F', path.join(paths.inventory, 'ssh_config'), '-o', 'BatchMode=yes', name, 'hostname'], { reject: false });
    assert.equal(String(viaConfig.stdout).trim(), name, String(viaConfig.stderr));
    // It offers the key types it holds, and each answers as pinned: dropbear 2022.83 offered RSA without
    // an RSA key and aborted the handshakes that chose it (as Go's SSH library, below, does).
    const sshConfig = path.join(paths.inventory, 'ssh_config');
    const verbose = await execa('ssh', ['-vv', '-F', sshConfig, '-o', 'BatchMode=yes', name, 'true'], { reject: false });
    assert.match(String(verbose.stderr).split('peer server KEXINIT proposal')[1] ?? '', /^debug2: host key algorithms: ssh-ed25519,rsa-sha2-256,ssh-rsa$/m, String(verbose.stderr));
    for (const algorithm of ['ssh-ed25519', 'rsa-sha2-256']) {
      const r = await execa('ssh', ['-F', sshConfig, '-o', 'BatchMode=yes', '-o', `HostKeyAlgorithms=${algorithm}`, name, 'hostname'], { reject: false });
      assert.equal(String(r.stdout).trim(), name, `${algorithm}: ${String(r.stderr)}`);
    }
    // A client of Go's SSH library: Debian's Packer (null builder, SSH communicator, files by SFTP) runs a provisioner.
    const template = path.join(dir, 'packer.json');
    writeFileSync(
      template,
      JSON.stringify({
        builders: [{ type: 'null', communicator: 'ssh', ssh_host: '127.0.0.1', ssh_port: sshPort, ssh_username: 'root', ssh_private_key_file: paths.sshKey, ssh_file_transfer_method: 'sftp', ssh_timeout: '60s' }],
        provisioners: [{ type: 'shell', inline: ['hostname > /tmp/from-packer'] }],
      }),
    );
    const packer = await execa('packer', ['build', '-color=false', template], { reject: false, cwd: dir, env: { PACKER_CACHE_DIR: path.join(dir, '.packer'), CHECKPOINT_DISABLE: '1' } });
    assert.equal(packer.exitCode, 0, String(packer.stdout) + String(packer.stderr));
    assert.equal((await sshRun(sshPort, key, blob, 'cat /tmp/from-packer')).trim(), name);
    const viaLab = await lab(['ssh', name, '--lab', dir, 'hostname']);
    assert.equal(viaLab.stdout.trim(), name, viaLab.stderr);
    assert.equal((await lab(['ssh', name, '--lab', dir, 'exit', '3'])).exitCode, 3);
    // Ansible (Debian's ansible-core) through lab's inventory.
    const ansibleInv = await lab(['hosts', 'list', '--format', 'ansible', '--lab', dir]);
    assert.match(ansibleInv.stdout, /^\[worker\]\ndemo-worker-1$/m);
    assert.match(ansibleInv.stdout, /^\[demo\]\ndemo-worker-1$/m);
    const invFile = path.join(dir, 'hosts.ini');
    writeFileSync(invFile, ansibleInv.stdout);
    // Modules, not only raw: the guest carries Python.
    const ansible = (...args: string[]) => execa('ansible', ['-i', invFile, 'worker', ...args], { reject: false, env: { ANSIBLE_HOST_KEY_CHECKING: 'True', ANSIBLE_LOCAL_TEMP: path.join(dir, '.ansible') } });
    const facts = await ansible('-m', 'setup', '-a', 'filter=ansible_hostname,ansible_python_version');
    assert.equal(facts.exitCode, 0, String(facts.stdout) + String(facts.stderr));
    assert.match(String(facts.stdout), new RegExp(`^${name} \\| SUCCESS => [\\s\\S]*"ansible_hostname": "${name}"[\\s\\S]*"ansible_python_version": "3\\.11\\.\\d+"`, 'm'));
    const copied = await ansible('-m', 'copy', '-a', 'content="copied by ansible\\n" dest=/tmp/from-ansible mode=0640');
    assert.equal(copied.exitCode, 0, String(copied.stdout) + String(copied.stderr));
    assert.match(String(copied.stdout), new RegExp(`^${name} \\| CHANGED => `, 'm'));
    assert.equal(await sshRun(sshPort, key, blob, 'stat -c %a /tmp/from-ansible; cat /tmp/from-ansible'), '640\ncopied by ansible\n');
    assert.match(String((await ansible('-m', 'copy', '-a', 'content="copied by ansible\\n" dest=/tmp/from-ansible mode=0640')).stdout), new RegExp(`^${name} \\| SUCCESS => `, 'm'), 'a second copy changes nothing');

    // Deploy on user networking: only SSH is forwarded, so hello's HTTP test reaches port 8080 through the SSH connection.
    const hello = async (op: string) => {
      const r = await lab(['hello', op, '--lab', dir, '--json']);
      return { exitCode: r.exitCode, result: (JSON.parse(r.stdout) as { hosts: { host: string; outcome: string; detail?: string }[] }).hosts[0]! };
    };
    for (const op of ['deploy', 'start', 'test']) {
      const r = await hello(op);
      assert.equal(r.exitCode, 0, JSON.stringify(r.result));
      assert.equal(r.result.host, name);
    }
    assert.match((await hello('test')).result.detail!, new RegExp(`^200 in \\d+ ms: hello from ${name} version 1\\.0\\.0$`));
    assert.equal((await hello('stop')).exitCode, 0);
    const stopped = await hello('test');
    assert.equal(stopped.exitCode, 1);
    assert.equal(stopped.result.detail, `HTTP GET ${name}:8080/: connection refused (through its SSH connection)`);

    const unknown = await lab(['ssh', 'demo-worker-9', '--lab', dir]);
    assert.equal(unknown.exitCode, 2);
    assert.match(unknown.stderr, /^lab: no live host "demo-worker-9" with a recorded host key; live hosts: demo-worker-1/);

    // As other tools halt and restart guests: busybox's reboot (a signal to PID 1) boots it again, calling back;
    // `shutdown -h now` (vagrant halt's) powers it off; then it starts again for the power button.
    const boots = (await inv.read()).hosts[name]!.bootCount;
    await sshRun(sshPort, key, blob, 'reboot').catch(() => undefined); // its SSH server goes first: the answer may not come
    await eventually(async () => ((await inv.read()).hosts[name]?.bootCount ?? 0) > boots, 120_000, 'the reboot to call back');
    assert.match(await provider.console(name), /mini: reboot: shutting down/);
    assert.equal((await provider.info(name)).state, 'running');
    assert.match(await sshRun(sshPort, key, blob, 'shutdown -r +5; shutdown -c'), /^shutdown: reboot in 300 s \(shutdown -c cancels\)\nshutdown cancelled\n$/);
    await sshRun(sshPort, key, blob, 'shutdown -h now').catch(() => undefined);
    await eventually(async () => (await provider.info(name)).state === 'stopped', 60_000, 'shutdown -h now to power it off');
    assert.match(lastLines(await provider.console(name), 5), /mini: poweroff: shutting down/);
    await provider.start(name, { boot: { kind: 'disk' } });
    await eventually(async () => ((await inv.read()).hosts[name]?.bootCount ?? 0) > boots + 1, 120_000, 'the boot after shutdown to call back');

    assert.equal(await provider.stop(name, 60_000), 'graceful', lastLines(await provider.console(name), 10));
    assert.match(lastLines(await provider.console(name), 5), /power button: shutting down/);

    await provider.delete(name);
    assert.equal(existsSync(path.join(paths.inventory, 'vms', name)), false);
    assert.equal((await provider.info(name)).state, 'missing');
    const ps = await execa('pgrep', ['-f', `qemu-system-x86_64 -name ${name} .*${path.join(paths.inventory, 'vms', name)}/`], { reject: false });
    assert.equal(ps.stdout.trim(), '', 'no QEMU left');
  } finally {
    if ((await provider.info(name)).state !== 'missing') await provider.delete(name);
    await server.stop();
    cleanup();
  }
});
