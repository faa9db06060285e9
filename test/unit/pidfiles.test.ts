import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { QemuProvider } from '../../src/providers/qemu/provider.js';
import { isRunning } from '../../src/util/process.js';
import type { VmSpec } from '../../src/providers/types.js';
import { runningPid, stopDaemon } from '../../src/monitor/daemon.js';
import { labPaths } from '../../src/project/paths.js';

/** A process that sleeps, with the arguments given (argv[0] included): stands for whatever now has a dead QEMU's number. */
function sleeper(argv0: string, args: string[]): ChildProcess {
  return spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)', '--', ...args], { argv0, stdio: 'ignore' });
}

function vm(vms: string, name: string, pid: number | string): void {
  const spec: VmSpec = { name, cpus: 1, memoryMiB: 256, diskMiB: 64, mac: '52:54:00:00:00:01', network: { mode: 'user', sshPort: 2222 } };
  mkdirSync(path.join(vms, name), { recursive: true });
  writeFileSync(path.join(vms, name, 'vm.json'), JSON.stringify(spec));
  writeFileSync(path.join(vms, name, 'qemu.pid'), `${pid}\n`);
}

test("a QEMU pidfile outliving its QEMU (killed, or the machine rebooted): a process that has its number now is not the VM, and stopping the VM sends it nothing", async () => {
  const vms = mkdtempSync(path.join(tmpdir(), 'lab-qemu-pid-'));
  const pidfile = (vm: string) => path.join(vms, vm, 'qemu.pid');
  // Another program with the same arguments; another lab's QEMU of a VM of the same name.
  const others = [sleeper('bash', ['-name', 'web-1', '-pidfile', pidfile('web-1')]), sleeper('qemu-system-x86_64', ['-name', 'web-2', '-pidfile', '/home/other/lab/inventory/vms/web-2/qemu.pid'])];
  const lookalike = sleeper('/usr/bin/qemu-system-x86_64', ['-name', 'web-1', '-display', 'none', '-daemonize', '-pidfile', pidfile('web-1')]);
  try {
    const p = new QemuProvider(vms);
    vm(vms, 'web-1', others[0]!.pid!);
    vm(vms, 'web-2', others[1]!.pid!);
    // A process that is gone; a pidfile that is not a number.
    vm(vms, 'web-3', spawnSync('true').pid!);
    vm(vms, 'web-4', 'garbage');
    for (const name of ['web-1', 'web-2', 'web-3', 'web-4']) {
      assert.equal((await p.info(name)).state, 'stopped', name);
      assert.equal(await p.stop(name, 0), 'already', name);
    }
    for (const o of others) assert.ok(isRunning(o.pid!), `process ${o.pid} was left alone`);

    // What looks like the VM's own QEMU (qemu-system-*, writing this pidfile) counts as it: not answering QMP, its state is unknown, and a stop kills it.
    vm(vms, 'web-1', lookalike.pid!);
    assert.equal((await p.info('web-1')).state, 'unknown');
    assert.equal(await p.stop('web-1', 0), 'forced');
    assert.equal(lookalike.exitCode ?? lookalike.signalCode ?? (await new Promise((r) => lookalike.once('exit', (_c, s) => r(s)))), 'SIGKILL');
  } finally {
    for (const o of [...others, lookalike]) o.kill('SIGKILL');
    rmSync(vms, { recursive: true, force: true });
  }
});

test("a monitor's pidfile outliving its monitor: another process with its number is not the monitor, is sent no SIGTERM, and does not stop a new monitor from starting", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'lab-monitor-pid-'));
  const other = sleeper('node', ['/srv/app.js', 'monitor', 'prod']);
  const monitor = sleeper('node', ['/usr/local/bin/lab', '--lab', dir, 'monitor', '--interval', '5', 'demo']);
  try {
    const paths = labPaths(dir);
    mkdirSync(paths.inventory, { recursive: true });
    // Another program (even one with a "monitor" of another name in its arguments): the pidfile is stale, and removed.
    writeFileSync(paths.monitorPid('demo'), `${other.pid}\n`);
    assert.equal(await stopDaemon(paths, 'demo', 1000), undefined);
    assert.equal(runningPid(paths, 'demo'), undefined);
    assert.ok(!existsSync(paths.monitorPid('demo')), 'the stale pidfile is removed');
    assert.ok(isRunning(other.pid!), 'the other process was left alone');
    // A lab monitor of this environment (options before its name) counts.
    writeFileSync(paths.monitorPid('demo'), `${monitor.pid}\n`);
    assert.equal(runningPid(paths, 'demo'), monitor.pid);
  } finally {
    other.kill('SIGKILL');
    monitor.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
